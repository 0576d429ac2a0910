/**
 * The stack configuration: read once, validated into a typed object before any resource is declared.
 * `parseConfig` is pure and throws one error listing every problem; `loadConfig` is the only reader of
 * Pulumi config in the program.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import {
  parseLocal,
  parseRemote,
  parseSsh,
  type LocalClusterConfig,
  type RemoteClusterConfig,
  type SshClusterConfig,
} from "./lib/clusterConfig";
import { DEFAULTS, PROJECT } from "./lib/configDefaults";
import { asBoolean, asObject, asString, ConfigErrors, fail, oneOf, optionalString } from "./lib/configReader";
import { parseEnvironments, type EnvironmentConfig } from "./lib/environmentConfig";
import { ACME_EMAIL_VARIABLE } from "./lib/flux";
import { acmeEmailError, durationError } from "./lib/validation";

export { DEFAULTS, PROJECT } from "./lib/configDefaults";
export type { K0sInstall, LocalClusterConfig, RemoteClusterConfig, SshAccess, SshClusterConfig } from "./lib/clusterConfig";
export type { EnvironmentConfig } from "./lib/environmentConfig";

const TARGETS = ["local", "remote", "ssh"] as const;
const OBJECT_KEYS = ["environments", "flux", "k0sSpec"];
const KNOWN_KEYS = [...new Set(["target", ...OBJECT_KEYS, ...Object.keys(DEFAULTS).filter((key) => key !== "flux")])];
const FLUX_KEYS = ["version", "url", "branch", "path", "interval", "manifestPath", "waitForControllers"];

export type Target = (typeof TARGETS)[number];

export interface FluxConfig {
  /** Flux release, for example v2.7.3. */
  readonly version: string;
  readonly url: string;
  readonly branch: string;
  /** Path inside the repository that the root Kustomization syncs. */
  readonly path: string;
  readonly interval: string;
  /** A local install manifest that replaces the release download (air-gapped installs, tests). */
  readonly manifestPath?: string;
  /** Whether `pulumi up` waits for Flux's Deployments to become ready. */
  readonly waitForControllers: boolean;
  /** Stack settings the GitOps repository substitutes into its manifests (`${key}`), such as acme_email. */
  readonly clusterSettings: Readonly<Record<string, string>>;
}

export interface PlatformConfig {
  readonly stack: string;
  readonly cluster: LocalClusterConfig | RemoteClusterConfig | SshClusterConfig;
  readonly environments: readonly EnvironmentConfig[];
  readonly flux: FluxConfig;
  /** Empty when this stack installs Flux and the age key; otherwise the stack that did, on the same cluster. */
  readonly clusterOwnerStack: string;
}

/**
 * Validates raw stack config (keys without the project prefix, values as Pulumi stores them: strings,
 * with objects and lists JSON-encoded). Throws one error that lists every bad key.
 */
export function parseConfig(stack: string, raw: Readonly<Record<string, string>>): PlatformConfig {
  const errors = new ConfigErrors(PROJECT);
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.includes(key)) errors.add(key, `is not a setting of this program; known keys: ${KNOWN_KEYS.join(", ")}`);
  }
  const target = oneOf(errors, "target", raw.target, TARGETS);
  const environments = parseEnvironments(errors, raw.environments);
  const flux = parseFlux(errors, raw.flux, target);
  // With no valid target, which cluster keys apply is unknown: report the target alone.
  const cluster =
    target === "remote"
      ? parseRemote(errors, raw)
      : target === "ssh"
        ? parseSsh(errors, raw)
        : target === "local"
          ? parseLocal(errors, raw)
          : undefined;
  const clusterOwnerStack = asString(errors, "clusterOwnerStack", raw.clusterOwnerStack) ?? DEFAULTS.clusterOwnerStack;
  if (clusterOwnerStack === stack)
    errors.add("clusterOwnerStack", `"${stack}" names this stack; leave it empty so this stack owns the bootstrap`);
  const acmeEmail = parseAcmeEmail(errors, raw, target, clusterOwnerStack);
  errors.throwIfAny();
  const clusterSettings: Record<string, string> = acmeEmail === undefined ? {} : { [ACME_EMAIL_VARIABLE]: acmeEmail };
  return { stack, cluster: cluster!, environments, flux: { ...flux!, clusterSettings }, clusterOwnerStack };
}

/**
 * Let's Encrypt's contact address, which the remote cluster's ACME ClusterIssuers read from the
 * stack: required where this stack bootstraps a remote or ssh cluster, refused anywhere else.
 */
function parseAcmeEmail(
  errors: ConfigErrors,
  raw: Readonly<Record<string, string>>,
  target: Target | undefined,
  clusterOwnerStack: string,
): string | undefined {
  const acmeEmail = optionalString(errors, "acmeEmail", raw.acmeEmail);
  if (target === "local") {
    if (acmeEmail !== undefined)
      errors.add("acmeEmail", "applies to the remote and ssh targets only; the workstation's certificates come from its own CA");
    return undefined;
  }
  if (target === undefined) return undefined;
  if (clusterOwnerStack !== "") {
    if (acmeEmail !== undefined) errors.add("acmeEmail", `is set by ${clusterOwnerStack}, the stack that bootstraps this cluster`);
    return undefined;
  }
  if (acmeEmail === undefined) {
    errors.add(
      "acmeEmail",
      "is required for the remote and ssh targets: Let's Encrypt's contact for the cluster's certificates; set it with `pulumi config set acmeEmail ops@your-company.com`",
    );
  } else {
    const problem = acmeEmailError(acmeEmail);
    if (problem) fail(errors, "acmeEmail", acmeEmail, problem);
  }
  return acmeEmail;
}

function parseFlux(
  errors: ConfigErrors,
  rawValue: string | undefined,
  target: Target | undefined,
): Omit<FluxConfig, "clusterSettings"> | undefined {
  const flux = asObject(
    errors,
    "flux",
    rawValue,
    "an object { version, url, branch?, path?, interval?, manifestPath?, waitForControllers? }",
  );
  if (flux === undefined) return undefined;
  for (const key of Object.keys(flux)) {
    if (!FLUX_KEYS.includes(key)) errors.add(`flux.${key}`, `is not a Flux setting; allowed: ${FLUX_KEYS.join(", ")}`);
  }
  const version = asString(errors, "flux.version", flux.version) ?? DEFAULTS.flux.version;
  if (!/^v2\.[0-9]+\.[0-9]+$/.test(version)) fail(errors, "flux.version", version, "must be a pinned Flux 2 release such as v2.7.3");
  const url = asString(errors, "flux.url", flux.url) ?? "";
  if (!/^(https?|ssh):\/\/[^\s]+$/.test(url)) {
    fail(errors, "flux.url", url, "must be the GitOps repository's http(s):// or ssh:// URL");
  }
  const path = asString(errors, "flux.path", flux.path) ?? `./clusters/${target ?? "local"}`;
  if (!/^\.\/[A-Za-z0-9._\/-]*$/.test(path) || path.split("/").includes("..")) {
    fail(errors, "flux.path", path, "must be a path inside the repository starting with ./, such as ./clusters/local");
  }
  const interval = asString(errors, "flux.interval", flux.interval) ?? DEFAULTS.flux.interval;
  const intervalProblem = durationError(interval);
  if (intervalProblem) fail(errors, "flux.interval", interval, intervalProblem);
  const branch = asString(errors, "flux.branch", flux.branch) ?? DEFAULTS.flux.branch;
  if (branch === "" || /\s/.test(branch)) fail(errors, "flux.branch", branch, "must be a branch name");
  return {
    version,
    url,
    branch,
    path,
    interval,
    manifestPath: optionalString(errors, "flux.manifestPath", flux.manifestPath),
    waitForControllers: asBoolean(errors, "flux.waitForControllers", flux.waitForControllers) ?? DEFAULTS.flux.waitForControllers,
  };
}

/**
 * Reads this project's keys from the stack config and validates them; the only config reader. A bad
 * value ends the run as a RunError, so `pulumi up` prints the messages alone, not a stack trace.
 */
export function loadConfig(): PlatformConfig {
  const prefix = `${PROJECT}:`;
  const raw = Object.fromEntries(
    Object.entries(pulumi.runtime.allConfig())
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
  let config: PlatformConfig;
  try {
    config = parseConfig(pulumi.getStack(), raw);
  } catch (error) {
    throw new pulumi.RunError((error as Error).message);
  }
  const problems = [...localFileErrors(config), ...sshAgentErrors(config, process.env), ...plainPrivateKeyErrors(raw)];
  if (problems.length > 0) throw new pulumi.RunError(`Invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
  return config;
}

/**
 * The command provider offers the SSH agent's keys whenever SSH_AUTH_SOCK is set in its environment
 * (it inherits the CLI's) and a connection names no agentSocketPath, and it has no setting that
 * turns the agent off: that is why an agent was used even with sshUseAgent false. Pointing
 * agentSocketPath elsewhere fails every dial, so the run is refused instead, and the agent is used
 * only when sshUseAgent asks for it.
 */
export function sshAgentErrors(config: PlatformConfig, env: Readonly<Record<string, string | undefined>>): string[] {
  if (config.cluster.target === "local") return [];
  const agent = env.SSH_AUTH_SOCK ?? "";
  if (config.cluster.ssh.useAgent && agent === "") {
    return [`${PROJECT}:sshUseAgent is true, but SSH_AUTH_SOCK is not set: start an agent (ssh-agent, ssh-add) or set sshPrivateKey`];
  }
  if (!config.cluster.ssh.useAgent && agent !== "") {
    return [
      `${PROJECT}:sshUseAgent is false, but SSH_AUTH_SOCK is set ("${agent}"), and the command provider would offer that agent's keys anyway: run \`env -u SSH_AUTH_SOCK pulumi up\`, or set sshUseAgent to true`,
    ];
  }
  return [];
}

/**
 * The private key must be stored as a secret. Pulumi.yaml cannot declare it `secret: true` (see the
 * comment there), so the stored value is checked here; the key itself is never echoed.
 */
function plainPrivateKeyErrors(raw: Readonly<Record<string, string>>): string[] {
  // Exported by the SDK's runtime, though not declared in its typings.
  const runtime = pulumi.runtime as unknown as { isConfigSecret: (key: string) => boolean };
  if ((raw.sshPrivateKey ?? "") === "" || runtime.isConfigSecret(`${PROJECT}:sshPrivateKey`)) return [];
  return [
    `${PROJECT}:sshPrivateKey is stored in plain text: set it again with \`pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519\``,
  ];
}

/** The files the config names on this machine: they must exist, and an upload must match its pin. */
function localFileErrors(config: PlatformConfig): string[] {
  const problems: string[] = [];
  const manifestPath = config.flux.manifestPath;
  if (manifestPath !== undefined && !fs.existsSync(manifestPath)) {
    problems.push(
      `${PROJECT}:flux.manifestPath: "${manifestPath}" does not exist; point it at a Flux install manifest or remove it to use the release`,
    );
  }
  if (config.cluster.target === "local") return problems;
  const { binaryPath, sha256, airgapImagesPath } = config.cluster.k0s;
  if (binaryPath !== undefined) {
    if (!fs.existsSync(binaryPath)) problems.push(`${PROJECT}:k0sBinary: "${binaryPath}" does not exist`);
    else {
      const actual = createHash("sha256").update(fs.readFileSync(binaryPath)).digest("hex");
      if (actual !== sha256) {
        problems.push(`${PROJECT}:k0sBinary: "${binaryPath}" has sha256 ${actual}, but k0sSha256 pins ${sha256}: refusing to install it`);
      }
    }
  }
  if (airgapImagesPath !== undefined && !(fs.existsSync(airgapImagesPath) && fs.statSync(airgapImagesPath).isDirectory())) {
    problems.push(`${PROJECT}:k0sAirgapImages: "${airgapImagesPath}" is not a directory of image bundles`);
  }
  return problems;
}

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
import { placeholderHostErrors } from "./lib/cloudNames";
import { DEFAULTS, PROJECT } from "./lib/configDefaults";
import { asBoolean, asInteger, asObject, asString, ConfigErrors, fail, oneOf, optionalString } from "./lib/configReader";
import { parseEnvironments, type EnvironmentConfig } from "./lib/environmentConfig";
import { parseFlux, type FluxConfig } from "./lib/fluxConfig";
import { upgradeProblem } from "./lib/k0sUpgrade";
import { ACME_EMAIL_VARIABLE, ALERT_RECEIVER_VARIABLE } from "./lib/flux";
import { acmeEmailError } from "./lib/validation";

export { DEFAULTS, PROJECT } from "./lib/configDefaults";
export type { K0sInstall, LocalClusterConfig, RemoteClusterConfig, SshAccess, SshClusterConfig } from "./lib/clusterConfig";
export type { EnvironmentConfig } from "./lib/environmentConfig";
export type { FluxAuth, FluxConfig } from "./lib/fluxConfig";

const TARGETS = ["local", "remote", "ssh"] as const;
const OBJECT_KEYS = ["environments", "flux", "k0sSpec", "ageIdentities", "repositoryTokens", "backup"];
const KNOWN_KEYS = [...new Set(["target", ...OBJECT_KEYS, ...Object.keys(DEFAULTS).filter((key) => key !== "flux")])];

export type Target = (typeof TARGETS)[number];

export interface PlatformConfig {
  readonly stack: string;
  readonly cluster: LocalClusterConfig | RemoteClusterConfig | SshClusterConfig;
  readonly environments: readonly EnvironmentConfig[];
  /** How this stack bootstraps Flux; undefined where clusterOwnerStack's stack did. */
  readonly flux?: FluxConfig;
  /** Empty when this stack installs Flux and the age key; otherwise the stack that did, on the same cluster. */
  readonly clusterOwnerStack: string;
  /** The stack's age keys (the cluster's and each environment's): rotation and imports. */
  readonly ageKeys: AgeKeysConfig;
}

export interface AgeKeysConfig {
  /** The generation in use; raising it rotates every key of the stack. */
  readonly generation: number;
  /** Whether the previous generation stays beside it during a rotation's change-over. */
  readonly keepPrevious: boolean;
  /** Existing identities to use instead of generating: `cluster`, or an environment's name. */
  readonly imported: Readonly<Record<string, string>>;
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
  const environments = parseEnvironments(errors, raw.environments, parseRepositoryTokens(errors, raw.repositoryTokens));
  // With no valid target, which cluster keys apply is unknown: report the target alone.
  const cluster =
    target === "remote"
      ? parseRemote(errors, raw, stack)
      : target === "ssh"
        ? parseSsh(errors, raw, stack)
        : target === "local"
          ? parseLocal(errors, raw)
          : undefined;
  if (cluster?.target === "remote" && cluster.domain !== undefined) placeholderHostErrors(errors, cluster.domain, environments);
  const clusterOwnerStack = asString(errors, "clusterOwnerStack", raw.clusterOwnerStack) ?? DEFAULTS.clusterOwnerStack;
  if (clusterOwnerStack === stack)
    errors.add("clusterOwnerStack", `"${stack}" names this stack; leave it empty so this stack owns the bootstrap`);
  const acmeEmail = parseAcmeEmail(errors, raw, target, clusterOwnerStack);
  const flux = parseFlux(errors, raw, target, clusterOwnerStack);
  const alertWebhookUrl = parseAlertWebhookUrl(errors, raw.alertWebhookUrl, clusterOwnerStack);
  const ageKeys = parseAgeKeys(errors, raw, environments, clusterOwnerStack);
  errors.throwIfAny();
  const clusterSettings: Record<string, string> = {
    ...(acmeEmail === undefined ? {} : { [ACME_EMAIL_VARIABLE]: acmeEmail }),
    [ALERT_RECEIVER_VARIABLE]: alertWebhookUrl === "" ? "none" : "webhook",
  };
  return {
    stack,
    cluster: cluster!,
    environments,
    flux: flux && { ...flux, clusterSettings, alertWebhookUrl },
    clusterOwnerStack,
    ageKeys,
  };
}

/**
 * Where Alertmanager delivers the soak's alerts: an http(s) URL, set on the stack that bootstraps the
 * cluster (its monitoring is cluster-wide). A secret (a Slack webhook's path is its credential), so
 * no message repeats it.
 */
function parseAlertWebhookUrl(errors: ConfigErrors, value: string | undefined, clusterOwnerStack: string): string {
  const url = value ?? "";
  if (url === "") return "";
  if (clusterOwnerStack !== "") {
    errors.add("alertWebhookUrl", `is ${clusterOwnerStack}'s to set: that stack bootstraps this cluster and its monitoring; remove it`);
    return "";
  }
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !["http:", "https:"].includes(parsed.protocol) || parsed.hostname === "" || /\s/.test(url)) {
    errors.add(
      "alertWebhookUrl",
      "must be an http:// or https:// URL with a host, such as a Slack incoming webhook's (value not shown: it is a secret)",
    );
  }
  return url;
}

/** Each client repository's token (`repositoryTokens.<env>`), checked against its environment later. */
function parseRepositoryTokens(errors: ConfigErrors, value: string | undefined): Record<string, string> {
  const given = asObject(errors, "repositoryTokens", value ?? "{}", "a map from an environment to its repository's token") ?? {};
  return Object.fromEntries(
    Object.entries(given).flatMap(([environment, token]) => {
      if (typeof token === "string" && token !== "") return [[environment, token]];
      errors.add(`repositoryTokens.${environment}`, "must be the repository's token, a non-empty string");
      return [];
    }),
  );
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

/**
 * Reads this project's keys from the stack config and validates them; the only config reader. A bad
 * value ends the run as a RunError, so `pulumi up` prints the messages alone, not a stack trace.
 * Where the stack installs k0s, the version change is checked against the version it installed last.
 */
export async function loadConfig(): Promise<PlatformConfig> {
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
  const problems = [
    ...localFileErrors(config),
    ...sshAgentErrors(config, process.env),
    ...plainSecretErrors(raw),
    ...(await k0sUpgradeErrors(config)),
  ];
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
    return [
      `${PROJECT}:sshUseAgent is true, but SSH_AUTH_SOCK is not set: run \`pulumi up\` where an agent holds the key (\`eval "$(ssh-agent)"\`, \`ssh-add ~/.ssh/id_ed25519\`), or set sshUseAgent to false and sshPrivateKey`,
    ];
  }
  if (!config.cluster.ssh.useAgent && agent !== "") {
    return [
      `${PROJECT}:sshUseAgent is false, but SSH_AUTH_SOCK is set ("${agent}"), and the command provider would offer that agent's keys anyway: either use the agent (\`pulumi config set sshUseAgent true\`, with the key loaded: \`ssh-add ~/.ssh/id_ed25519\`), or run this command without it (\`env -u SSH_AUTH_SOCK pulumi up\`)`,
    ];
  }
  return [];
}

/** Keys whose values must be stored as secrets. */
export const SECRET_KEYS: Readonly<Record<string, string>> = {
  sshPrivateKey: "pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
  fluxToken: "pulumi config set --secret fluxToken <token>",
  ageIdentities: "pulumi config set --secret --path 'ageIdentities.<cluster or environment>' < key.txt",
  repositoryTokens: "pulumi config set --secret --path 'repositoryTokens.<environment>' <token>",
  backupSecretAccessKey: "pulumi config set --secret backupSecretAccessKey <secret>",
  alertWebhookUrl: "pulumi config set --secret alertWebhookUrl <url>",
};

/** An age X25519 identity as age-keygen writes it (its comment lines aside). */
const AGE_IDENTITY = /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/;

/**
 * Key rotation (ageKeyGeneration, keepPreviousAgeKey) and imported identities (ageIdentities: the
 * cluster's under `cluster`, an environment's under its name), each checked without echoing a key.
 */
function parseAgeKeys(
  errors: ConfigErrors,
  raw: Readonly<Record<string, string>>,
  environments: readonly EnvironmentConfig[],
  clusterOwnerStack: string,
): AgeKeysConfig {
  const generation = asInteger(errors, "ageKeyGeneration", raw.ageKeyGeneration) ?? DEFAULTS.ageKeyGeneration;
  if (generation < 1) errors.refuse("ageKeyGeneration", String(generation), "must be 1 or more: raise it by one to rotate the keys");
  const keepPrevious = asBoolean(errors, "keepPreviousAgeKey", raw.keepPreviousAgeKey) ?? DEFAULTS.keepPreviousAgeKey;
  const given =
    asObject(errors, "ageIdentities", raw.ageIdentities ?? "{}", "a map from `cluster` or an environment to an age identity") ?? {};
  const owners = [...(clusterOwnerStack === "" ? ["cluster"] : []), ...environments.map((environment) => environment.name)];
  const imported: Record<string, string> = {};
  for (const [owner, value] of Object.entries(given)) {
    const identity = typeof value === "string" ? value.split("\n").find((line) => line.startsWith("AGE-SECRET-KEY-")) : undefined;
    if (!owners.includes(owner)) errors.add(`ageIdentities.${owner}`, `names no key of this stack; allowed: ${owners.join(", ")}`);
    else if (identity === undefined || !AGE_IDENTITY.test(identity)) {
      errors.add(`ageIdentities.${owner}`, "is not an age X25519 identity (AGE-SECRET-KEY-1…, as age-keygen writes it)");
    } else imported[owner] = identity;
  }
  return { generation, keepPrevious, imported };
}

/**
 * Every key of SECRET_KEYS must be stored as a secret. Pulumi.yaml cannot declare them `secret:
 * true` (see the comment there), so the stored values are checked here; never echoed.
 */
function plainSecretErrors(raw: Readonly<Record<string, string>>): string[] {
  // Exported by the SDK's runtime, though not declared in its typings.
  const runtime = pulumi.runtime as unknown as { isConfigSecret: (key: string) => boolean };
  return (
    Object.entries(SECRET_KEYS)
      // A map left empty (`pulumi config rm --path` of its last entry) holds nothing to protect.
      .filter(([key]) => !["", "{}"].includes(raw[key] ?? "") && !runtime.isConfigSecret(`${PROJECT}:${key}`))
      .map(([key, command]) => `${PROJECT}:${key} is stored in plain text: set it again with \`${command}\``)
  );
}

/**
 * A `k0sVersion` change must be an upgrade k0s can make in place (lib/k0sUpgrade.ts). The version
 * the stack installed last is its own `k0sVersion` output, read back from its state; before the
 * first `up` there is none, and anything goes.
 */
async function k0sUpgradeErrors(config: PlatformConfig): Promise<string[]> {
  if (config.cluster.target === "local") return [];
  const self = new pulumi.StackReference("installed-k0s", {
    name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
  });
  const { version, versionPinned, restoredVersion } = config.cluster.k0s;
  const installed = restoredVersion ?? ((await self.getOutputValue("k0sVersion")) as string | undefined);
  const problem = upgradeProblem(installed, version);
  if (problem !== undefined) return [`${PROJECT}:k0sVersion: ${problem}`];
  // A new program's default must not restart a running cluster unasked.
  if (installed !== undefined && installed !== version && !versionPinned) {
    return [
      `${PROJECT}:k0sVersion is not set, and the program's default (${version}) differs from the ${installed} this stack runs: set it to choose, ${installed} to stay or ${version} to upgrade now (docs/upgrades.md)`,
    ];
  }
  return [];
}

/** The files the config names on this machine: they must exist, and an upload must match its pin. */
function localFileErrors(config: PlatformConfig): string[] {
  const problems: string[] = [];
  const manifestPath = config.flux?.manifestPath;
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

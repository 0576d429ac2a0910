/**
 * The stack's `flux` settings and `fluxToken`: which repository the cluster follows, and how Flux
 * authenticates to it. Pure: creates no resources.
 */
import { DEFAULTS } from "./configDefaults";
import { asBoolean, asObject, asString, ConfigErrors, fail, optionalString } from "./configReader";
import { durationError } from "./validation";

const FLUX_KEYS = [
  "version",
  "url",
  "branch",
  "path",
  "interval",
  "manifestPath",
  "waitForControllers",
  "username",
  "knownHosts",
  "caCertificate",
];

/**
 * How Flux reaches the repository. Over SSH, with a deploy key the program generates (its public
 * half is the stack output `fluxDeployKey`) and the Git host's keys pinned; or over HTTPS, with a
 * token (a private repository) or without (a public one), trusting `caCertificate` for a Git server
 * with a private CA.
 */
export type FluxAuth =
  | { readonly kind: "ssh"; readonly knownHosts: string }
  | { readonly kind: "https"; readonly username: string; readonly token?: string; readonly caCertificate?: string };

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
  readonly auth: FluxAuth;
  /** Stack settings the GitOps repository substitutes into its manifests (`${key}`), such as acme_email. */
  readonly clusterSettings: Readonly<Record<string, string>>;
}

/**
 * The `flux` block (and `fluxToken`) of a stack that bootstraps its cluster; refused on a stack whose
 * cluster another stack bootstraps, which never uses them.
 */
export function parseFlux(
  errors: ConfigErrors,
  raw: Readonly<Record<string, string>>,
  target: string | undefined,
  clusterOwnerStack: string,
): Omit<FluxConfig, "clusterSettings"> | undefined {
  if (clusterOwnerStack !== "") {
    for (const key of ["flux", "fluxToken"].filter((name) => (raw[name] ?? "") !== "")) {
      errors.add(key, `is ${clusterOwnerStack}'s to set: that stack bootstraps Flux on this cluster, so this one never uses it; remove it`);
    }
    return undefined;
  }
  const flux = asObject(
    errors,
    "flux",
    raw.flux ?? "{}",
    "an object { url, version?, branch?, path?, interval?, manifestPath?, waitForControllers?, username?, knownHosts?, caCertificate? }",
  );
  if (flux === undefined) return undefined;
  for (const key of Object.keys(flux)) {
    if (!FLUX_KEYS.includes(key)) errors.add(`flux.${key}`, `is not a Flux setting; allowed: ${FLUX_KEYS.join(", ")}`);
  }
  const version = asString(errors, "flux.version", flux.version) ?? DEFAULTS.flux.version;
  if (!/^v2\.[0-9]+\.[0-9]+$/.test(version)) fail(errors, "flux.version", version, "must be a pinned Flux 2 release such as v2.7.3");
  const url = asString(errors, "flux.url", flux.url) ?? "";
  if (url === "") {
    errors.add("flux.url", "is required: your GitOps repository (a copy of gitops/), such as https://github.com/<you>/<gitops-repo>");
  } else if (/^http:\/\//.test(url)) {
    fail(errors, "flux.url", url, "sends the repository (and any token) in the clear: use its https:// or ssh:// URL");
  } else if (!/^(https|ssh):\/\/[^\s]+$/.test(url)) {
    fail(errors, "flux.url", url, "must be the GitOps repository's https:// or ssh:// URL");
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
    auth: parseAuth(errors, url, flux, raw.fluxToken ?? DEFAULTS.fluxToken),
  };
}

function parseAuth(errors: ConfigErrors, url: string, flux: Record<string, unknown>, token: string): FluxAuth {
  const knownHosts = optionalString(errors, "flux.knownHosts", flux.knownHosts);
  const username = optionalString(errors, "flux.username", flux.username);
  const caCertificate = optionalString(errors, "flux.caCertificate", flux.caCertificate);
  if (url.startsWith("ssh://")) {
    for (const [key, value] of [
      ["flux.username", username],
      ["flux.caCertificate", caCertificate],
      ["fluxToken", token === "" ? undefined : token],
    ] as const) {
      if (value !== undefined)
        errors.add(
          key,
          "applies to https:// URLs; an ssh:// repository takes the deploy key the program generates (stack output fluxDeployKey)",
        );
    }
    if (knownHosts === undefined) {
      errors.add(
        "flux.knownHosts",
        "is required for an ssh:// URL, so Flux refuses an impostor: the Git host's known_hosts lines (for GitHub, from https://api.github.com/meta, not ssh-keyscan over a network you do not trust)",
      );
    } else {
      const lines = knownHosts.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
      const bad = lines.find((line) => line.trim().split(/\s+/).length < 3);
      if (lines.length === 0 || bad !== undefined) {
        fail(errors, "flux.knownHosts", bad ?? knownHosts, "must be known_hosts lines: `<host> <key type> <base64 key>`");
      }
    }
    return { kind: "ssh", knownHosts: knownHosts ?? "" };
  }
  if (knownHosts !== undefined)
    errors.add("flux.knownHosts", "applies to ssh:// URLs; an https:// repository is checked against its TLS certificate");
  if (caCertificate !== undefined && !/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n?$/.test(caCertificate)) {
    errors.add(
      "flux.caCertificate",
      "must be a PEM certificate (-----BEGIN CERTIFICATE----- …), the CA that signed the Git server's certificate",
    );
  }
  if (username !== undefined && token === "") errors.add("flux.username", "goes with fluxToken, which is not set");
  return { kind: "https", username: username ?? "git", token: token === "" ? undefined : token, caCertificate };
}

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
  /** Where Alertmanager delivers alerts (a secret); "" for nowhere. */
  readonly alertWebhookUrl: string;
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
): Omit<FluxConfig, "clusterSettings" | "alertWebhookUrl"> | undefined {
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
  const { url, branch, auth } = parseGitSource(errors, { settings: "flux", token: "fluxToken" }, flux, raw.fluxToken ?? DEFAULTS.fluxToken);
  return {
    version,
    url,
    branch,
    path: parsePath(errors, "flux.path", flux.path, `./clusters/${target ?? "local"}`),
    interval: parseInterval(errors, "flux.interval", flux.interval),
    manifestPath: optionalString(errors, "flux.manifestPath", flux.manifestPath),
    waitForControllers: asBoolean(errors, "flux.waitForControllers", flux.waitForControllers) ?? DEFAULTS.flux.waitForControllers,
    auth,
  };
}

function parsePath(errors: ConfigErrors, key: string, value: unknown, fallback: string): string {
  const path = asString(errors, key, value) ?? fallback;
  if (!/^\.\/[A-Za-z0-9._\/-]*$/.test(path) || path.split("/").includes("..")) {
    fail(errors, key, path, `must be a path inside the repository starting with ./, such as ${fallback}`);
  }
  return path;
}

function parseInterval(errors: ConfigErrors, key: string, value: unknown): string {
  const interval = asString(errors, key, value) ?? DEFAULTS.flux.interval;
  const problem = durationError(interval);
  if (problem) fail(errors, key, interval, problem);
  return interval;
}

const CLIENT_REPOSITORY_KEYS = ["url", "branch", "path", "interval", "username", "knownHosts", "caCertificate"];

/**
 * An environment's own GitOps repository: a client whose manifests live in the client's repository,
 * not the platform's. Flux follows it for that environment alone (components/clientRepository.ts).
 */
export interface ClientRepositoryConfig {
  readonly url: string;
  readonly branch: string;
  /** The folder Flux applies into the environment's namespace. */
  readonly path: string;
  readonly interval: string;
  readonly auth: FluxAuth;
}

/** `environments.<env>.repository`, with its token from `repositoryTokens.<env>`. */
export function parseClientRepository(
  errors: ConfigErrors,
  environment: string,
  value: unknown,
  token: string,
): ClientRepositoryConfig | undefined {
  const key = `environments.${environment}.repository`;
  if (value === undefined || value === null) {
    if (token !== "") errors.add(`repositoryTokens.${environment}`, `goes with ${key}, which is not set`);
    return undefined;
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    errors.refuse(key, JSON.stringify(value), `must be an object { ${CLIENT_REPOSITORY_KEYS.join(", ")} } (url required)`);
    return undefined;
  }
  const settings = value as Record<string, unknown>;
  for (const name of Object.keys(settings)) {
    if (!CLIENT_REPOSITORY_KEYS.includes(name))
      errors.add(`${key}.${name}`, `is not a repository setting; allowed: ${CLIENT_REPOSITORY_KEYS.join(", ")}`);
  }
  const { url, branch, auth } = parseGitSource(errors, { settings: key, token: `repositoryTokens.${environment}` }, settings, token);
  return {
    url,
    branch,
    path: parsePath(errors, `${key}.path`, settings.path, `./apps/overlays/${environment}`),
    interval: parseInterval(errors, `${key}.interval`, settings.interval),
    auth,
  };
}

/** Where a repository's settings sit in the stack config: the settings object's key, and its token's. */
export interface GitSourceKeys {
  /** `flux`, or `environments.<env>.repository`. */
  readonly settings: string;
  /** `fluxToken`, or `repositoryTokens.<env>`. */
  readonly token: string;
}

/** A repository's URL, branch and credentials, from a `flux`-shaped settings object and its token. */
export function parseGitSource(
  errors: ConfigErrors,
  keys: GitSourceKeys,
  settings: Record<string, unknown>,
  token: string,
): { url: string; branch: string; auth: FluxAuth } {
  const key = (name: string) => `${keys.settings}.${name}`;
  const url = asString(errors, key("url"), settings.url) ?? "";
  if (url === "") {
    errors.add(key("url"), "is required: your GitOps repository (a copy of gitops/), such as https://github.com/<you>/<gitops-repo>");
  } else if (/^http:\/\//.test(url)) {
    fail(errors, key("url"), url, "sends the repository (and any token) in the clear: use its https:// or ssh:// URL");
  } else if (!/^(https|ssh):\/\/[^\s]+$/.test(url)) {
    fail(errors, key("url"), url, "must be the GitOps repository's https:// or ssh:// URL");
  }
  const branch = asString(errors, key("branch"), settings.branch) ?? DEFAULTS.flux.branch;
  if (branch === "" || /\s/.test(branch)) fail(errors, key("branch"), branch, "must be a branch name");
  return { url, branch, auth: parseAuth(errors, keys, url, settings, token) };
}

function parseAuth(errors: ConfigErrors, keys: GitSourceKeys, url: string, settings: Record<string, unknown>, token: string): FluxAuth {
  const key = (name: string) => `${keys.settings}.${name}`;
  const knownHosts = optionalString(errors, key("knownHosts"), settings.knownHosts);
  const username = optionalString(errors, key("username"), settings.username);
  const caCertificate = optionalString(errors, key("caCertificate"), settings.caCertificate);
  if (url.startsWith("ssh://")) {
    for (const [settingKey, value] of [
      [key("username"), username],
      [key("caCertificate"), caCertificate],
      [keys.token, token === "" ? undefined : token],
    ] as const) {
      if (value !== undefined)
        errors.add(
          settingKey,
          "applies to https:// URLs; an ssh:// repository takes the deploy key the program generates (a stack output: fluxDeployKey, or clientDeployKeys)",
        );
    }
    if (knownHosts === undefined) {
      errors.add(
        key("knownHosts"),
        "is required for an ssh:// URL, so Flux refuses an impostor: the Git host's known_hosts lines (for GitHub, from https://api.github.com/meta, not ssh-keyscan over a network you do not trust)",
      );
    } else {
      const lines = knownHosts.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
      const bad = lines.find((line) => line.trim().split(/\s+/).length < 3);
      if (lines.length === 0 || bad !== undefined) {
        fail(errors, key("knownHosts"), bad ?? knownHosts, "must be known_hosts lines: `<host> <key type> <base64 key>`");
      }
    }
    return { kind: "ssh", knownHosts: knownHosts ?? "" };
  }
  if (knownHosts !== undefined)
    errors.add(key("knownHosts"), "applies to ssh:// URLs; an https:// repository is checked against its TLS certificate");
  if (caCertificate !== undefined && !/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n?$/.test(caCertificate)) {
    errors.add(
      key("caCertificate"),
      "must be a PEM certificate (-----BEGIN CERTIFICATE----- …), the CA that signed the Git server's certificate",
    );
  }
  if (username !== undefined && token === "") errors.add(key("username"), `goes with ${keys.token}, which is not set`);
  return { kind: "https", username: username ?? "git", token: token === "" ? undefined : token, caCertificate };
}

/**
 * A warning for each repository Flux would fetch over https:// with no token: a private one (a
 * client's usually is) leaves its GitRepository at `authentication required` and nothing applied,
 * which no config check could tell from a public one without asking the Git host. A warning, so a
 * public repository still works. ssh:// repositories always get a deploy key.
 */
export function missingCredentialWarnings(
  flux: Pick<FluxConfig, "url" | "auth"> | undefined,
  environments: readonly { readonly name: string; readonly repository?: Pick<ClientRepositoryConfig, "url" | "auth"> }[],
): string[] {
  const sources = [
    ...(flux === undefined ? [] : [{ key: "flux", source: flux, token: "fluxToken", deployKey: "fluxDeployKey" }]),
    ...environments.flatMap(({ name, repository }) =>
      repository === undefined
        ? []
        : [
            {
              key: `environments.${name}.repository`,
              source: repository,
              token: `--path 'repositoryTokens.${name}'`,
              deployKey: `clientDeployKeys.${name}`,
            },
          ],
    ),
  ];
  return sources
    .filter(({ source }) => source.auth.kind === "https" && source.auth.token === undefined)
    .map(
      ({ key, source, token, deployKey }) =>
        `${key}.url ${source.url} has no credentials: if the repository is private, Flux's GitRepository stays at "authentication required" and applies nothing. ` +
        `Give Flux a read-only token (\`pulumi config set --secret ${token} <token>\`), or use the repository's ssh:// URL with ${key}.knownHosts and add the stack output ${deployKey} to it as a read-only deploy key. ` +
        `A public repository needs neither.`,
    );
}

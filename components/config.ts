/**
 * The stack configuration: read once, validated into a typed object before any resource is declared.
 * `parseConfig` is pure and throws one error listing every problem; `loadConfig` is the only reader of
 * Pulumi config in the program.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import {
  asBoolean,
  asInteger,
  asObject,
  asString,
  asStringList,
  asStringMap,
  ConfigErrors,
  fail,
  oneOf,
  optionalString,
} from "./lib/configReader";
import type { EgressRule } from "./environmentNamespace";
import { quotaErrors } from "./lib/quota";
import { ACME_EMAIL_VARIABLE } from "./lib/flux";
import { K0S_RELEASE, SHA256_HEX } from "./lib/k0s";
import { hostPatternError, hostPatternsOverlap } from "./lib/hostNames";
import {
  acmeEmailError,
  cidrError,
  DEFAULT_MIN_PREFIX,
  dns1123LabelError,
  domainError,
  durationError,
  egressCidrError,
  egressExcept,
  hostError,
  labelValueError,
  sshPublicKeyError,
} from "./lib/validation";

/** The Pulumi project name, which prefixes every config key (`k0s-platform:<key>`). */
export const PROJECT = "k0s-platform";

/** Defaults for every optional key; `Pulumi.yaml` declares the same values (a test keeps them equal). */
export const DEFAULTS = {
  kubeconfig: "/var/lib/k0s/pki/admin.conf",
  kubeContext: "",
  region: "fra1",
  dropletSize: "s-2vcpu-4gb",
  dropletImage: "debian-12-x64",
  k0sVersion: "v1.35.4+k0s.0",
  k0sSha256: "",
  k0sBinary: "",
  k0sAirgapImages: "",
  apiSans: [] as string[],
  k0sSpec: {} as Record<string, unknown>,
  adminCidrs: [] as string[],
  adminCidrMinPrefixIpv4: DEFAULT_MIN_PREFIX.ipv4,
  adminCidrMinPrefixIpv6: DEFAULT_MIN_PREFIX.ipv6,
  sshHost: "",
  sshPort: 22,
  sshUser: "root",
  sshHostKey: "",
  sshPublicKey: "",
  sshPrivateKey: "",
  sshUseAgent: false,
  sshDialAttempts: 30,
  domain: "",
  acmeEmail: "",
  protectDroplet: true,
  clusterOwnerStack: "",
  flux: {
    version: "v2.7.3",
    branch: "main",
    interval: "1m",
    waitForControllers: true,
  },
} as const;

/** Namespaces the platform itself or Kubernetes owns; an environment must never take one over. */
const RESERVED_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease", "flux-system", "traefik"];
const TARGETS = ["local", "remote", "ssh"] as const;
const OBJECT_KEYS = ["environments", "flux", "k0sSpec"];
const KNOWN_KEYS = [...new Set(["target", ...OBJECT_KEYS, ...Object.keys(DEFAULTS).filter((key) => key !== "flux")])];
const ENVIRONMENT_KEYS = ["client", "billingGroup", "quota", "networkIsolation", "egress", "hosts", "protect"];
const FLUX_KEYS = ["version", "url", "branch", "path", "interval", "manifestPath", "waitForControllers"];

export type Target = (typeof TARGETS)[number];

/** One environment = one namespace on the stack's cluster. */
export interface EnvironmentConfig {
  /** Namespace name, also the `environment` label. */
  readonly name: string;
  readonly client: string;
  readonly billingGroup: string;
  /** ResourceQuota `spec.hard`; empty means no quota. */
  readonly quota: Readonly<Record<string, string>>;
  readonly networkIsolation: boolean;
  /** What its pods may reach beyond DNS and their own namespace (the metadata range left out). */
  readonly allowedEgress: readonly EgressRule[];
  /** The host names its routes and certificates may use (components/lib/hostNames.ts); none if empty. */
  readonly hosts: readonly string[];
  /** Whether `pulumi destroy` must refuse to delete the namespace. */
  readonly protect: boolean;
}

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

export interface LocalClusterConfig {
  readonly target: "local";
  readonly kubeconfigPath: string;
  readonly context: string;
}

/** How the program reaches a host over SSH. */
export interface SshAccess {
  readonly port: number;
  readonly user: string;
  /** Undefined when the SSH agent (SSH_AUTH_SOCK) authenticates instead. */
  readonly privateKey?: pulumi.Output<string>;
  /** Whether the SSH agent may authenticate; when false, no agent may be in reach (sshAgentErrors). */
  readonly useAgent: boolean;
  /**
   * The host's own public key line, pinned by every connection. Required for the ssh target; for a
   * droplet, the program generates the host key and pins it, and this overrides that for a droplet
   * created before (whose key the program never knew).
   */
  readonly hostKey?: string;
  /** The only key the install steps keep in the user's authorized_keys (a droplet's sshPublicKey). */
  readonly authorizedKey?: string;
  /** How many times to dial before giving up (about 5 s apart once backed off). */
  readonly dialAttempts: number;
}

/** Which k0s goes onto the host, and how. */
export interface K0sInstall {
  /** A pinned release, for example v1.35.4+k0s.0. */
  readonly version: string;
  /** The binary's pinned sha256; unset: the release's published sha256sums.txt decides. */
  readonly sha256?: string;
  /** A local k0s binary to upload instead of downloading on the host (air-gapped). */
  readonly binaryPath?: string;
  /** A local directory of image bundles (*.tar) to upload into k0s's images directory. */
  readonly airgapImagesPath?: string;
  /** Names and addresses the API certificate must cover besides the address the program dials. */
  readonly extraSans: readonly string[];
  /** More of k0s's ClusterConfig spec (images, network...), merged under what the program sets. */
  readonly spec: Readonly<Record<string, unknown>>;
  /** The only networks the host firewall lets reach the Kubernetes API (6443) and the kubelet (10250). */
  readonly adminCidrs: readonly string[];
}

export interface RemoteClusterConfig {
  readonly target: "remote";
  readonly region: string;
  readonly dropletSize: string;
  readonly dropletImage: string;
  readonly adminCidrs: readonly string[];
  readonly sshPublicKey: string;
  readonly domain?: string;
  readonly protectDroplet: boolean;
  readonly ssh: SshAccess;
  readonly k0s: K0sInstall;
}

/** k0s on a server the user already has (any VPS or bare-metal box), reached over SSH. */
export interface SshClusterConfig {
  readonly target: "ssh";
  /** The server's address, as the program dials it and as the kubeconfig names it. */
  readonly host: string;
  readonly ssh: SshAccess;
  readonly k0s: K0sInstall;
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

function parseLocal(errors: ConfigErrors, raw: Readonly<Record<string, string>>): LocalClusterConfig {
  const context = asString(errors, "kubeContext", raw.kubeContext) ?? DEFAULTS.kubeContext;
  if (context === "") {
    errors.add(
      "kubeContext",
      "is required for the local target, so nothing is ever applied to whatever context happens to be current (k0s names it Default)",
    );
  }
  const kubeconfigPath = asString(errors, "kubeconfig", raw.kubeconfig) ?? DEFAULTS.kubeconfig;
  return { target: "local", kubeconfigPath, context };
}

function parseRemote(errors: ConfigErrors, raw: Readonly<Record<string, string>>): RemoteClusterConfig {
  const slug = (key: "region" | "dropletSize" | "dropletImage"): string => {
    const value = asString(errors, key, raw[key]) ?? DEFAULTS[key];
    if (!/^[a-z0-9][a-z0-9-]*$/.test(value))
      fail(errors, key, value, "must be a DigitalOcean slug such as fra1, s-2vcpu-4gb or debian-12-x64");
    return value;
  };
  const adminCidrs = parseAdminCidrs(errors, raw, "SSH and the Kubernetes API");
  const sshPublicKey = asString(errors, "sshPublicKey", raw.sshPublicKey) ?? DEFAULTS.sshPublicKey;
  const keyProblem = sshPublicKeyError(sshPublicKey);
  if (keyProblem) fail(errors, "sshPublicKey", abbreviate(sshPublicKey), keyProblem);
  const domain = optionalString(errors, "domain", raw.domain);
  if (domain !== undefined) {
    const problem = domainError(domain);
    if (problem) fail(errors, "domain", domain, problem);
  }
  // A droplet is reached as root on port 22; sshHost, sshPort and sshUser belong to the ssh target.
  for (const key of setOtherThanDefault(raw, ["sshHost", "sshPort", "sshUser"])) {
    errors.add(key, "applies to the ssh target only; a droplet is reached as root on port 22 at its reserved IP");
  }
  return {
    target: "remote",
    region: slug("region"),
    dropletSize: slug("dropletSize"),
    dropletImage: slug("dropletImage"),
    adminCidrs,
    sshPublicKey,
    domain,
    protectDroplet: asBoolean(errors, "protectDroplet", raw.protectDroplet) ?? DEFAULTS.protectDroplet,
    ssh: {
      ...parseSshAccess(errors, raw, { port: DEFAULTS.sshPort, user: DEFAULTS.sshUser, hostKeyRequired: false }),
      authorizedKey: sshPublicKey,
    },
    k0s: parseK0sInstall(errors, raw, adminCidrs),
  };
}

function parseSsh(errors: ConfigErrors, raw: Readonly<Record<string, string>>): SshClusterConfig {
  const host = asString(errors, "sshHost", raw.sshHost) ?? DEFAULTS.sshHost;
  if (host === "") errors.add("sshHost", "is required for the ssh target: the address of the server k0s goes onto");
  else {
    const problem = hostError(host);
    if (problem) fail(errors, "sshHost", host, problem);
  }
  const port = asInteger(errors, "sshPort", raw.sshPort) ?? DEFAULTS.sshPort;
  if (port < 1 || port > 65535) fail(errors, "sshPort", String(port), "must be a TCP port, 1 to 65535");
  const user = asString(errors, "sshUser", raw.sshUser) ?? DEFAULTS.sshUser;
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) fail(errors, "sshUser", user, "must be a Unix user name such as root or admin");
  for (const key of setOtherThanDefault(raw, ["region", "dropletSize", "dropletImage", "sshPublicKey", "domain", "protectDroplet"])) {
    errors.add(key, "applies to the remote (DigitalOcean) target only");
  }
  // No cloud firewall here: the host firewall the install steps keep is all that guards the API.
  const adminCidrs = parseAdminCidrs(errors, raw, "the Kubernetes API and the kubelet through the host firewall");
  return {
    target: "ssh",
    host,
    ssh: parseSshAccess(errors, raw, { port, user, hostKeyRequired: true }),
    k0s: parseK0sInstall(errors, raw, adminCidrs),
  };
}

/**
 * The networks the admins work from, each no broader than the configured minimum prefix, so no list
 * of them can add up to the internet (see cidrError).
 */
function parseAdminCidrs(errors: ConfigErrors, raw: Readonly<Record<string, string>>, reach: string): string[] {
  const minPrefix = (key: "adminCidrMinPrefixIpv4" | "adminCidrMinPrefixIpv6", least: number, most: number): number => {
    const value = asInteger(errors, key, raw[key]) ?? DEFAULTS[key];
    if (value < least || value > most) {
      fail(errors, key, String(value), `must be between ${least} and ${most}: a broader network is not one you administer from`);
    }
    return value;
  };
  const min = { ipv4: minPrefix("adminCidrMinPrefixIpv4", 16, 32), ipv6: minPrefix("adminCidrMinPrefixIpv6", 32, 128) };
  const adminCidrs = asStringList(errors, "adminCidrs", raw.adminCidrs) ?? [...DEFAULTS.adminCidrs];
  if (adminCidrs.length === 0) errors.add("adminCidrs", `must list at least one CIDR allowed to reach ${reach}`);
  adminCidrs.forEach((cidr, index) => {
    const problem = cidrError(cidr, min);
    if (problem) fail(errors, `adminCidrs[${index}]`, cidr, problem);
  });
  return adminCidrs;
}

/**
 * The keys among `keys` set to something other than their default. Pulumi hands the program every
 * key Pulumi.yaml declares, defaults included, so "set at all" cannot tell a user's mistake apart.
 */
function setOtherThanDefault(raw: Readonly<Record<string, string>>, keys: readonly (keyof typeof DEFAULTS)[]): string[] {
  const asRaw = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
  return keys.filter((key) => raw[key] !== undefined && raw[key] !== asRaw(DEFAULTS[key]));
}

function parseSshAccess(
  errors: ConfigErrors,
  raw: Readonly<Record<string, string>>,
  fixed: { port: number; user: string; hostKeyRequired: boolean },
): SshAccess {
  const useAgent = asBoolean(errors, "sshUseAgent", raw.sshUseAgent) ?? DEFAULTS.sshUseAgent;
  const privateKey = raw.sshPrivateKey ?? DEFAULTS.sshPrivateKey;
  if (!useAgent && privateKey === "") {
    errors.add(
      "sshPrivateKey",
      "is missing: set it with `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`, or set sshUseAgent to true",
    );
  } else if (privateKey !== "" && !/^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey.trim())) {
    errors.add("sshPrivateKey", "is not a PEM/OpenSSH private key (it must start with -----BEGIN ... PRIVATE KEY-----)");
  }
  const hostKey = optionalString(errors, "sshHostKey", raw.sshHostKey);
  if (hostKey === undefined && fixed.hostKeyRequired) {
    errors.add(
      "sshHostKey",
      "is required for the ssh target, so a changed or impostor host is refused: set it to the server's `ssh-keyscan -t ed25519 <host>` line without the host name",
    );
  } else if (hostKey !== undefined) {
    const problem = sshPublicKeyError(hostKey);
    if (problem) fail(errors, "sshHostKey", abbreviate(hostKey), problem);
  }
  const dialAttempts = asInteger(errors, "sshDialAttempts", raw.sshDialAttempts) ?? DEFAULTS.sshDialAttempts;
  if (dialAttempts < 1 || dialAttempts > 1000) fail(errors, "sshDialAttempts", String(dialAttempts), "must be between 1 and 1000");
  return {
    port: fixed.port,
    user: fixed.user,
    privateKey: privateKey === "" ? undefined : pulumi.secret(privateKey),
    useAgent,
    hostKey,
    dialAttempts,
  };
}

function parseK0sInstall(errors: ConfigErrors, raw: Readonly<Record<string, string>>, adminCidrs: readonly string[]): K0sInstall {
  const version = asString(errors, "k0sVersion", raw.k0sVersion) ?? DEFAULTS.k0sVersion;
  if (!K0S_RELEASE.test(version)) fail(errors, "k0sVersion", version, "must be a pinned k0s release such as v1.35.4+k0s.0");
  const sha256 = optionalString(errors, "k0sSha256", raw.k0sSha256);
  if (sha256 !== undefined && !SHA256_HEX.test(sha256))
    fail(errors, "k0sSha256", sha256, "must be a sha256 in lower-case hex (64 characters)");
  const binaryPath = optionalString(errors, "k0sBinary", raw.k0sBinary);
  if (binaryPath !== undefined && sha256 === undefined) {
    errors.add("k0sBinary", "needs k0sSha256: an uploaded binary is checked against a pinned checksum before it is installed");
  }
  const extraSans = asStringList(errors, "apiSans", raw.apiSans) ?? [...DEFAULTS.apiSans];
  extraSans.forEach((san, index) => {
    const problem = hostError(san);
    if (problem) fail(errors, `apiSans[${index}]`, san, problem);
  });
  const spec =
    raw.k0sSpec === undefined
      ? { ...DEFAULTS.k0sSpec }
      : (asObject(errors, "k0sSpec", raw.k0sSpec, "a map of k0s ClusterConfig spec fields such as { images: ... }") ?? {});
  return {
    version,
    sha256,
    binaryPath,
    airgapImagesPath: optionalString(errors, "k0sAirgapImages", raw.k0sAirgapImages),
    extraSans,
    spec,
    adminCidrs,
  };
}

function parseEnvironments(errors: ConfigErrors, rawValue: string | undefined): EnvironmentConfig[] {
  const map = asObject(
    errors,
    "environments",
    rawValue,
    "a map from namespace name to { client, billingGroup, quota?, networkIsolation?, egress?, hosts?, protect? }",
  );
  if (map === undefined) return [];
  if (Object.keys(map).length === 0) errors.add("environments", "must declare at least one environment");
  const environments = Object.entries(map).map(([name, value]): EnvironmentConfig => {
    const path = `environments.${name}`;
    const nameProblem = dns1123LabelError(name);
    if (nameProblem) fail(errors, "environments", name, `is not a valid namespace name: ${nameProblem}`);
    if (RESERVED_NAMESPACES.includes(name))
      fail(errors, "environments", name, `is reserved; choose a namespace other than ${RESERVED_NAMESPACES.join(", ")}`);
    const entry =
      asObject(errors, path, value, "an object { client, billingGroup, quota?, networkIsolation?, egress?, hosts?, protect? }") ?? {};
    for (const key of Object.keys(entry)) {
      if (!ENVIRONMENT_KEYS.includes(key))
        errors.add(`${path}.${key}`, `is not an environment setting; allowed: ${ENVIRONMENT_KEYS.join(", ")}`);
    }
    const label = (key: "client" | "billingGroup"): string => {
      const labelValue = asString(errors, `${path}.${key}`, entry[key]);
      if (labelValue === undefined || labelValue === "") {
        errors.add(`${path}.${key}`, "is required (it becomes a namespace label used for billing)");
        return "";
      }
      const problem = labelValueError(labelValue);
      if (problem) fail(errors, `${path}.${key}`, labelValue, problem);
      return labelValue;
    };
    const quota = asStringMap(errors, `${path}.quota`, entry.quota) ?? {};
    for (const problem of quotaErrors(`${PROJECT}:${path}.quota`, quota)) errors.addRaw(problem);
    return {
      name,
      client: label("client"),
      billingGroup: label("billingGroup"),
      quota,
      networkIsolation: asBoolean(errors, `${path}.networkIsolation`, entry.networkIsolation) ?? true,
      allowedEgress: parseEgress(errors, `${path}.egress`, entry.egress),
      hosts: parseHosts(errors, `${path}.hosts`, entry.hosts),
      protect: asBoolean(errors, `${path}.protect`, entry.protect) ?? false,
    };
  });
  // One host name, one namespace: otherwise staging could serve (and get certificates for) production's.
  for (const [index, environment] of environments.entries()) {
    for (const other of environments.slice(index + 1)) {
      for (const pattern of environment.hosts) {
        const clash = other.hosts.find((otherPattern) => hostPatternsOverlap(pattern, otherPattern));
        if (clash !== undefined) {
          fail(
            errors,
            `environments.${environment.name}.hosts`,
            pattern,
            `overlaps ${clash} of environments.${other.name}.hosts: a host name must belong to one environment only`,
          );
        }
      }
    }
  }
  return environments;
}

const HOSTS_SHAPE = 'a list of host names or one-label wildcards, such as ["*.staging.example.com", "shop.example.org"]';

function parseHosts(errors: ConfigErrors, path: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    errors.refuse(path, JSON.stringify(value), `must be ${HOSTS_SHAPE}`);
    return [];
  }
  const patterns = value as string[];
  for (const [index, pattern] of patterns.entries()) {
    const problem = hostPatternError(pattern);
    if (problem) fail(errors, `${path}[${index}]`, pattern, problem);
  }
  return patterns;
}

const EGRESS_SHAPE = 'a list such as [{ cidr: "203.0.113.10/32", ports: [5432] }] (ports optional: every TCP port)';

function parseEgress(errors: ConfigErrors, path: string, value: unknown): EgressRule[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    errors.refuse(path, JSON.stringify(value), `must be ${EGRESS_SHAPE}`);
    return [];
  }
  return value.flatMap((item: unknown, index) => {
    const at = `${path}[${index}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      errors.refuse(at, JSON.stringify(item), `must be { cidr, ports? }, in ${EGRESS_SHAPE}`);
      return [];
    }
    const entry = item as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (key !== "cidr" && key !== "ports") errors.add(`${at}.${key}`, "is not an egress setting; allowed: cidr, ports");
    }
    const cidr = asString(errors, `${at}.cidr`, entry.cidr);
    if (cidr === undefined) {
      errors.add(`${at}.cidr`, `is required, in ${EGRESS_SHAPE}`);
      return [];
    }
    const problem = egressCidrError(cidr);
    if (problem) fail(errors, `${at}.cidr`, cidr, problem);
    // `pulumi config set --path ...ports[0] 5432` stores a string; a stack file's YAML, a number.
    const given = entry.ports ?? [];
    const ports = Array.isArray(given)
      ? (given as unknown[]).map((port) => (typeof port === "string" && /^[0-9]+$/.test(port) ? Number(port) : port))
      : [];
    const valid =
      Array.isArray(given) && ports.every((port) => Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535);
    if (!valid) errors.refuse(`${at}.ports`, JSON.stringify(given), "must be a list of TCP ports from 1 to 65535");
    if (problem || !valid) return [];
    return [{ cidr, except: egressExcept(cidr), ports: ports as number[] }];
  });
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

function abbreviate(value: string): string {
  return value.length > 24 ? `${value.slice(0, 24)}…` : value;
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

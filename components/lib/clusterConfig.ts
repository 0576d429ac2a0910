/** The cluster keys of the stack config for each target (local, remote, ssh), validated (see components/config.ts). */
import * as pulumi from "@pulumi/pulumi";
import { isIPv6 } from "node:net";
import { parseBackup, type BackupConfig } from "./backup";
import { cloudName } from "./cloudNames";
import { asBoolean, asInteger, asObject, asString, asStringList, ConfigErrors, fail, optionalString } from "./configReader";
import { DEFAULTS, PROJECT } from "./configDefaults";
import { K0S_RELEASE, SHA256_HEX } from "./k0s";
import { isPassphraseProtected } from "./sshKeys";
import { cidrError, domainError, hostError, sshPublicKeyError } from "./validation";

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
  /** A pinned release, for example v1.36.3+k0s.2. */
  readonly version: string;
  /** Whether the stack sets k0sVersion, rather than taking the program's default. */
  readonly versionPinned: boolean;
  /**
   * Set after a rollback by backup restore (docs/upgrades.md, "Going back"): the version the host runs again,
   * taken as installed instead of the stack's last `k0sVersion` output, which is newer.
   */
  readonly restoredVersion?: string;
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
  /** An SSH key already in the DigitalOcean account (fingerprint or id), given to the droplet instead of uploading sshPublicKey. */
  readonly existingSshKey?: string;
  readonly domain?: string;
  readonly protectDroplet: boolean;
  /** DigitalOcean's weekly droplet backups (paid: 20% of the droplet's price). */
  readonly dropletBackups: boolean;
  /** Scheduled `k0s backup` to Spaces; none if no `backup` block. */
  readonly backup?: BackupConfig;
  readonly ssh: SshAccess;
  readonly k0s: K0sInstall;
}

/** k0s on a server the user already has (any VPS or bare-metal box), reached over SSH. */
export interface SshClusterConfig {
  readonly target: "ssh";
  /** Scheduled `k0s backup` to an S3 endpoint; none if no `backup` block. */
  readonly backup?: BackupConfig;
  /** The server's address, as the program dials it and as the kubeconfig names it. */
  readonly host: string;
  readonly ssh: SshAccess;
  readonly k0s: K0sInstall;
}

export function parseLocal(errors: ConfigErrors, raw: Readonly<Record<string, string>>): LocalClusterConfig {
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

export function parseRemote(errors: ConfigErrors, raw: Readonly<Record<string, string>>, stack: string): RemoteClusterConfig {
  const slug = (key: "region" | "dropletSize" | "dropletImage"): string => {
    const value = asString(errors, key, raw[key]) ?? DEFAULTS[key];
    if (!/^[a-z0-9][a-z0-9-]*$/.test(value))
      fail(errors, key, value, "must be a DigitalOcean slug such as fra1, s-2vcpu-4gb or debian-12-x64");
    return value;
  };
  const adminCidrs = parseAdminCidrs(errors, raw, "SSH and the Kubernetes API");
  // The program dials the droplet's reserved IP, and the kubeconfig names it: an IPv4 address, so an
  // admin arrives from an IPv4 address even on a dual-stack machine, whatever IPv6 networks are listed.
  if (adminCidrs.length > 0 && adminCidrs.every((cidr) => isIPv6(cidr.split("/")[0]))) {
    errors.refuse(
      "adminCidrs",
      JSON.stringify(adminCidrs),
      `lists no IPv4 network, but the program and kubectl reach the droplet at its reserved IPv4 address, so your IPv4 address is the one the firewall sees: add it with \`pulumi config set --path 'adminCidrs[${adminCidrs.length}]' "$(curl -4 -s https://ifconfig.me)/32"\``,
    );
  }
  const sshPublicKey = asString(errors, "sshPublicKey", raw.sshPublicKey) ?? DEFAULTS.sshPublicKey;
  const keyProblem = sshPublicKeyError(sshPublicKey);
  if (keyProblem) fail(errors, "sshPublicKey", abbreviate(sshPublicKey), keyProblem);
  const existingSshKey = optionalString(errors, "existingSshKey", raw.existingSshKey);
  if (existingSshKey !== undefined && !/^(([0-9a-f]{2}:){15}[0-9a-f]{2}|[0-9]+)$/.test(existingSshKey)) {
    fail(
      errors,
      "existingSshKey",
      existingSshKey,
      "must be an SSH key's MD5 fingerprint (aa:bb:…, 16 pairs) or numeric id, as `doctl compute ssh-key list` prints them",
    );
  }
  const domain = optionalString(errors, "domain", raw.domain);
  if (domain !== undefined) {
    const problem = domainError(domain);
    if (problem) fail(errors, "domain", domain, problem);
  }
  // A droplet is reached as root on port 22; sshHost, sshPort and sshUser belong to the ssh target.
  for (const key of setOtherThanDefault(raw, ["sshHost", "sshPort", "sshUser"])) {
    errors.add(key, "applies to the ssh target only; a droplet is reached as root on port 22 at its reserved IP");
  }
  const region = slug("region");
  return {
    target: "remote",
    region,
    dropletSize: slug("dropletSize"),
    dropletImage: slug("dropletImage"),
    adminCidrs,
    sshPublicKey,
    existingSshKey,
    domain,
    protectDroplet: asBoolean(errors, "protectDroplet", raw.protectDroplet) ?? DEFAULTS.protectDroplet,
    dropletBackups: asBoolean(errors, "dropletBackups", raw.dropletBackups) ?? DEFAULTS.dropletBackups,
    // Spaces in the droplet's region, unless the block names another endpoint.
    backup: parseBackup(errors, raw, {
      endpoint: `https://${region}.digitaloceanspaces.com`,
      region,
      prefix: cloudName(PROJECT, stack),
    }),
    ssh: {
      ...parseSshAccess(errors, raw, { port: DEFAULTS.sshPort, user: DEFAULTS.sshUser, hostKeyRequired: false }),
      authorizedKey: sshPublicKey,
    },
    k0s: parseK0sInstall(errors, raw, adminCidrs),
  };
}

export function parseSsh(errors: ConfigErrors, raw: Readonly<Record<string, string>>, stack: string): SshClusterConfig {
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
  for (const key of setOtherThanDefault(raw, [
    "region",
    "dropletSize",
    "dropletImage",
    "sshPublicKey",
    "existingSshKey",
    "domain",
    "protectDroplet",
    "dropletBackups",
  ])) {
    errors.add(key, "applies to the remote (DigitalOcean) target only");
  }
  // No cloud firewall here: the host firewall the install steps keep is all that guards the API.
  const adminCidrs = parseAdminCidrs(errors, raw, "the Kubernetes API and the kubelet through the host firewall");
  return {
    target: "ssh",
    host,
    ssh: parseSshAccess(errors, raw, { port, user, hostKeyRequired: true }),
    k0s: parseK0sInstall(errors, raw, adminCidrs),
    backup: parseBackup(errors, raw, { region: "us-east-1", prefix: cloudName(PROJECT, stack) }),
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
  } else if (privateKey !== "" && isPassphraseProtected(privateKey)) {
    errors.add(
      "sshPrivateKey",
      "is protected by a passphrase, which the program cannot type when it dials (the run would fail at its first SSH step, halfway through): " +
        "either load the key into your SSH agent (`ssh-add ~/.ssh/id_ed25519`), set sshUseAgent to true and remove this key (`pulumi config rm sshPrivateKey`), " +
        "or give the stack a key without a passphrase, kept only in its encrypted config (`ssh-keygen -t ed25519 -N '' -f k0s-admin`, " +
        "then `pulumi config set --secret sshPrivateKey < k0s-admin`; authorize k0s-admin.pub: sshPublicKey on the remote target, the server's authorized_keys on the ssh target)",
    );
  }
  const hostKey = optionalString(errors, "sshHostKey", raw.sshHostKey);
  if (hostKey === undefined && fixed.hostKeyRequired) {
    errors.add(
      "sshHostKey",
      "is required for the ssh target, so a changed or impostor host is refused: set it to the line `cat /etc/ssh/ssh_host_ed25519_key.pub` prints on the server's console (or your provider's boot log), not to what `ssh-keyscan` gets over the network, which trusts whichever host answers",
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
  if (!K0S_RELEASE.test(version)) fail(errors, "k0sVersion", version, "must be a pinned k0s release such as v1.36.3+k0s.2");
  const restoredVersion = optionalString(errors, "k0sRestoredVersion", raw.k0sRestoredVersion);
  if (restoredVersion !== undefined && restoredVersion !== version) {
    fail(
      errors,
      "k0sRestoredVersion",
      restoredVersion,
      `must equal k0sVersion ("${version}"): the version you restored on the host, now pinned again`,
    );
  }
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
    versionPinned: raw.k0sVersion !== undefined && raw.k0sVersion !== "",
    restoredVersion,
    sha256,
    binaryPath,
    airgapImagesPath: optionalString(errors, "k0sAirgapImages", raw.k0sAirgapImages),
    extraSans,
    spec,
    adminCidrs,
  };
}

function abbreviate(value: string): string {
  return value.length > 24 ? `${value.slice(0, 24)}…` : value;
}

import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEFAULTS, parseConfig, PlatformConfig, sshAgentErrors } from "../components/config";
import { ALERT_RECEIVER_VARIABLE } from "../components/lib/flux";
import { asPulumiConfig, ROOT } from "./lib/program";
import { SEED_STACKS_DIR, seedStackConfig } from "./lib/seedStacks";

/** Raw config as the program receives it, without the project prefix. */
function raw(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(asPulumiConfig(config)).map(([key, value]) => [key.replace(/^k0s-platform:/, ""), value]));
}

const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme";
const ACME_EMAIL = "platform@acme-consulting.eu";
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

const local = {
  target: "local",
  kubeContext: "Default",
  environments: { staging: { client: "acme", billingGroup: "enterprise", quota: { "requests.cpu": "1", "limits.cpu": "2" } } },
  flux: { url: "https://github.com/acme/gitops" },
};
const remote = {
  ...local,
  target: "remote",
  kubeContext: "",
  adminCidrs: ["203.0.113.7/32"],
  sshPublicKey: PUBLIC_KEY,
  sshPrivateKey: PRIVATE_KEY,
  acmeEmail: ACME_EMAIL,
};
/** What the README has a user set before a remote stack's first `up`. */
const secretsForRemote = { adminCidrs: ["203.0.113.7/32"], sshPublicKey: PUBLIC_KEY, sshPrivateKey: PRIVATE_KEY, acmeEmail: ACME_EMAIL };
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPWbQ2mMtVr3fT0Gk6pWv0cZJ0f9c1y7pS2b7oZ2q8xK";
const ssh = {
  ...local,
  target: "ssh",
  kubeContext: "",
  sshHost: "k0s.example.com",
  sshHostKey: HOST_KEY,
  sshPrivateKey: PRIVATE_KEY,
  acmeEmail: ACME_EMAIL,
  adminCidrs: ["198.51.100.0/24"],
};

function errorOf(config: Record<string, unknown>): string {
  try {
    parseConfig("test", raw(config));
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("parseConfig accepted the config");
}

const withEnv = (env: Record<string, unknown>) => ({
  ...local,
  environments: { staging: { client: "acme", billingGroup: "enterprise", ...env } },
});
const withQuota = (quota: Record<string, unknown>) => withEnv({ quota });

describe("parseConfig refuses bad input with a message naming key, value and what is allowed", () => {
  it.each([
    ["unknown target", { ...local, target: "cloud" }, 'k0s-platform:target: "cloud" is not allowed; allowed: local, remote, ssh'],
    ["missing target", { ...local, target: undefined }, "k0s-platform:target is required; allowed: local, remote, ssh"],
    ["unknown key", { ...local, enviroments: {} }, "k0s-platform:enviroments is not a setting of this program"],
    [
      "namespace not DNS-1123",
      { ...local, environments: { Staging_1: { client: "a", billingGroup: "b" } } },
      'k0s-platform:environments: "Staging_1" is not a valid namespace name: must be a DNS-1123 label',
    ],
    [
      "namespace too long",
      { ...local, environments: { ["a".repeat(64)]: { client: "a", billingGroup: "b" } } },
      "is not a valid namespace name: must be at most 63 characters",
    ],
    [
      "reserved namespace",
      { ...local, environments: { "kube-system": { client: "a", billingGroup: "b" } } },
      'k0s-platform:environments: "kube-system" is reserved',
    ],
    ["no environments", { ...local, environments: {} }, "k0s-platform:environments must declare at least one environment"],
    [
      "label value with space",
      withEnv({ client: "acme corp" }),
      'k0s-platform:environments.staging.client: "acme corp" must be a Kubernetes label value',
    ],
    [
      "label value too long",
      withEnv({ billingGroup: "b".repeat(64) }),
      "k0s-platform:environments.staging.billingGroup: " + `"${"b".repeat(64)}" must be at most 63 characters`,
    ],
    [
      "missing label",
      { ...local, environments: { staging: { client: "acme" } } },
      "k0s-platform:environments.staging.billingGroup is required",
    ],
    ["unknown environment key", withEnv({ quotas: {} }), "k0s-platform:environments.staging.quotas is not an environment setting"],
    [
      "quota key that is not a quota resource",
      withQuota({ "request.cpu": "1" }),
      'k0s-platform:environments.staging.quota: "request.cpu" is not a ResourceQuota resource',
    ],
    [
      "unparseable quantity",
      withQuota({ "requests.memory": "1GB" }),
      'k0s-platform:environments.staging.quota.requests.memory: "1GB" is not a Kubernetes quantity',
    ],
    [
      "fractional object count",
      withQuota({ pods: "2.5" }),
      'k0s-platform:environments.staging.quota.pods: "2.5" must be a whole number of objects',
    ],
    [
      "request above limit",
      withQuota({ "requests.memory": "3Gi", "limits.memory": "2Gi" }),
      'k0s-platform:environments.staging.quota.requests.memory: "3Gi" is above limits.memory "2Gi"',
    ],
    [
      "quantity of the wrong type",
      withQuota({ "requests.cpu": true }),
      "k0s-platform:environments.staging.quota.requests.cpu: true must be a quantity",
    ],
    [
      "a priority above the platform's range",
      withEnv({ priority: 2_000_000 }),
      "k0s-platform:environments.staging.priority: 2000000 must be between -1000000 and 1000000: the platform's own pods run at 0, Kubernetes' system classes far above",
    ],
    [
      "a priority that is not a whole number",
      withEnv({ priority: "high" }),
      'k0s-platform:environments.staging.priority: "high" must be a whole number',
    ],
    [
      "an existing SSH key that is neither a fingerprint nor an id",
      { ...remote, existingSshKey: "ssh-ed25519 AAAA" },
      'k0s-platform:existingSshKey: "ssh-ed25519 AAAA" must be an SSH key\'s MD5 fingerprint (aa:bb:…, 16 pairs) or numeric id',
    ],
    ["a key generation below 1", { ...local, ageKeyGeneration: "0" }, "k0s-platform:ageKeyGeneration: 0 must be 1 or more"],
    [
      "an imported identity for a key the stack does not have",
      { ...local, ageIdentities: { production: "AGE-SECRET-KEY-1" } },
      "k0s-platform:ageIdentities.production names no key of this stack; allowed: cluster, staging",
    ],
    [
      "an imported identity that is not one",
      { ...local, ageIdentities: { cluster: "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq" } },
      "k0s-platform:ageIdentities.cluster is not an age X25519 identity (AGE-SECRET-KEY-1…, as age-keygen writes it)",
    ],
    [
      "non-boolean isolation",
      withEnv({ networkIsolation: "yes" }),
      'k0s-platform:environments.staging.networkIsolation: "yes" must be true or false',
    ],
    [
      "egress into the metadata range",
      withEnv({ egress: [{ cidr: "169.254.169.254/32" }] }),
      'k0s-platform:environments.staging.egress[0].cidr: "169.254.169.254/32" is inside the link-local range 169.254.0.0/16, where the cloud\'s metadata service answers',
    ],
    [
      "egress with host bits",
      withEnv({ egress: [{ cidr: "203.0.113.10/24" }] }),
      'k0s-platform:environments.staging.egress[0].cidr: "203.0.113.10/24" has host bits set; use the network address (for example 203.0.113.0/24)',
    ],
    [
      "a host that is not a DNS name",
      withEnv({ hosts: ["shop_example.com"] }),
      'k0s-platform:environments.staging.hosts[0]: "shop_example.com" must be a DNS name such as example.com: dot-separated lower-case labels, optionally after "*." for every name one label under it',
    ],
    [
      "a wildcard other than the first label",
      withEnv({ hosts: ["shop.*.example.com"] }),
      'k0s-platform:environments.staging.hosts[0]: "shop.*.example.com" may hold a wildcard only as its whole first label, as in *.staging.example.com',
    ],
    [
      "a wildcard over a top-level domain",
      withEnv({ hosts: ["*.com"] }),
      'k0s-platform:environments.staging.hosts[0]: "*.com" must be a DNS name such as example.com: dot-separated lower-case labels, optionally after "*." for every name one label under it',
    ],
    [
      "hosts that are not a list",
      withEnv({ hosts: "*.example.com" }),
      'k0s-platform:environments.staging.hosts: "*.example.com" must be a list of host names or one-label wildcards, such as ["*.staging.example.com", "shop.example.org"]',
    ],
    [
      "a host name two environments could claim",
      {
        ...local,
        environments: {
          staging: { client: "acme", billingGroup: "enterprise", hosts: ["shop.example.com"] },
          production: { client: "acme", billingGroup: "enterprise", hosts: ["*.example.com"] },
        },
      },
      'k0s-platform:environments.staging.hosts: "shop.example.com" overlaps *.example.com of environments.production.hosts: a host name must belong to one environment only',
    ],
    [
      "egress port out of range",
      withEnv({ egress: [{ cidr: "203.0.113.10/32", ports: [0, 70000] }] }),
      "k0s-platform:environments.staging.egress[0].ports: [0,70000] must be a list of TCP ports from 1 to 65535",
    ],
    ["egress not a list", withEnv({ egress: "0.0.0.0/0" }), 'k0s-platform:environments.staging.egress: "0.0.0.0/0" must be a list such as'],
    ["local without context", { ...local, kubeContext: "" }, "k0s-platform:kubeContext is required for the local target"],
    [
      "missing flux",
      { ...local, flux: undefined },
      "k0s-platform:flux.url is required: your GitOps repository (a copy of gitops/), such as https://github.com/<you>/<gitops-repo>",
    ],
    [
      "flux URL scheme",
      { ...local, flux: { url: "git@github.com:acme/gitops" } },
      'k0s-platform:flux.url: "git@github.com:acme/gitops" must be the GitOps repository\'s https:// or ssh:// URL',
    ],
    [
      "a plain http:// repository",
      { ...local, flux: { url: "http://git.acme.internal/gitops.git" } },
      'k0s-platform:flux.url: "http://git.acme.internal/gitops.git" sends the repository (and any token) in the clear: use its https:// or ssh:// URL',
    ],
    [
      "an ssh:// repository with no pinned host keys",
      { ...local, flux: { url: "ssh://git@github.com/acme/gitops.git" } },
      "k0s-platform:flux.knownHosts is required for an ssh:// URL, so Flux refuses an impostor",
    ],
    [
      "an ssh:// repository given a token",
      {
        ...local,
        fluxToken: "ghp_x",
        flux: {
          url: "ssh://git@github.com/acme/gitops.git",
          knownHosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        },
      },
      "k0s-platform:fluxToken applies to https:// URLs; an ssh:// repository takes the deploy key the program generates",
    ],
    [
      "known_hosts that are not known_hosts lines",
      { ...local, flux: { url: "ssh://git@github.com/acme/gitops.git", knownHosts: "github.com" } },
      'k0s-platform:flux.knownHosts: "github.com" must be known_hosts lines',
    ],
    [
      "a CA that is not a PEM certificate",
      { ...local, flux: { url: "https://git.acme.internal/gitops.git", caCertificate: "acme-ca" } },
      "k0s-platform:flux.caCertificate must be a PEM certificate",
    ],
    [
      "a client repository over plain http://",
      withEnv({ repository: { url: "http://git.globex.internal/gitops.git" } }),
      'k0s-platform:environments.staging.repository.url: "http://git.globex.internal/gitops.git" sends the repository (and any token) in the clear',
    ],
    [
      "a client repository without its URL",
      withEnv({ repository: { path: "./deploy" } }),
      "k0s-platform:environments.staging.repository.url is required",
    ],
    [
      "a misspelt client repository setting",
      withEnv({ repository: { url: "https://github.com/globex/gitops", brnach: "main" } }),
      "k0s-platform:environments.staging.repository.brnach is not a repository setting; allowed: url, branch, path",
    ],
    [
      "a client repository path outside the repository",
      withEnv({ repository: { url: "https://github.com/globex/gitops", path: "../platform" } }),
      'k0s-platform:environments.staging.repository.path: "../platform" must be a path inside the repository starting with ./, such as ./apps/overlays/staging',
    ],
    [
      "a client repository over ssh:// with no pinned host keys",
      withEnv({ repository: { url: "ssh://git@github.com/globex/gitops.git" } }),
      "k0s-platform:environments.staging.repository.knownHosts is required for an ssh:// URL",
    ],
    [
      "a token for an environment without a repository",
      { ...local, repositoryTokens: { staging: "glpat-x" } },
      "k0s-platform:repositoryTokens.staging goes with environments.staging.repository, which is not set",
    ],
    [
      "a token for no environment",
      { ...withEnv({ repository: { url: "https://github.com/globex/gitops" } }), repositoryTokens: { production: "glpat-x" } },
      "k0s-platform:repositoryTokens.production names no environment of this stack",
    ],
    [
      "a client repository user without its token",
      withEnv({ repository: { url: "https://github.com/globex/gitops", username: "oauth2" } }),
      "k0s-platform:environments.staging.repository.username goes with repositoryTokens.staging, which is not set",
    ],
    [
      "a stack that does not bootstrap Flux, given a flux block",
      { ...local, clusterOwnerStack: "dev" },
      "k0s-platform:flux is dev's to set: that stack bootstraps Flux on this cluster, so this one never uses it; remove it",
    ],
    [
      "unpinned flux",
      { ...local, flux: { ...local.flux, version: "latest" } },
      'k0s-platform:flux.version: "latest" must be a pinned Flux 2 release',
    ],
    [
      "flux path escaping the repo",
      { ...local, flux: { ...local.flux, path: "./../other" } },
      'k0s-platform:flux.path: "./../other" must be a path inside the repository',
    ],
    [
      "flux interval",
      { ...local, flux: { ...local.flux, interval: "5 minutes" } },
      'k0s-platform:flux.interval: "5 minutes" must be a duration',
    ],
    ["unknown flux key", { ...local, flux: { ...local.flux, ref: "main" } }, "k0s-platform:flux.ref is not a Flux setting"],
    [
      "admin CIDR without prefix",
      { ...remote, adminCidrs: ["203.0.113.7"] },
      'k0s-platform:adminCidrs[0]: "203.0.113.7" must be a CIDR block',
    ],
    [
      "admin CIDR with host bits",
      { ...remote, adminCidrs: ["10.1.2.3/8"] },
      'k0s-platform:adminCidrs[0]: "10.1.2.3/8" has host bits set; use 10.1.2.3/32 (that address alone)',
    ],
    [
      "an IPv6 address with IPv4's /32, as `curl -s https://ifconfig.me` gives it on a dual-stack machine",
      { ...remote, adminCidrs: ["203.0.113.7/32", "2a01:4f8:c17:1234::1/32"] },
      'k0s-platform:adminCidrs[1]: "2a01:4f8:c17:1234::1/32" has host bits set; use 2a01:4f8:c17:1234::1/128 (that address alone) or 2a01:4f8:c17:1234::/64 (its /64 network)',
    ],
    [
      "only IPv6 admin networks for a droplet reached at its IPv4 address",
      { ...remote, adminCidrs: ["2a01:4f8:c17:1234::/64"] },
      `k0s-platform:adminCidrs: ["2a01:4f8:c17:1234::/64"] lists no IPv4 network, but the program and kubectl reach the droplet at its reserved IPv4 address, so your IPv4 address is the one the firewall sees: add it with \`pulumi config set --path 'adminCidrs[1]' "$(curl -4 -s https://ifconfig.me)/32"\``,
    ],
    [
      "the seed's placeholder hosts beside the stack's own domain",
      {
        ...remote,
        domain: "mycorp.com",
        environments: {
          staging: { client: "acme", billingGroup: "enterprise", hosts: ["*.staging.example.com"] },
          production: { client: "acme", billingGroup: "enterprise", hosts: ["*.mycorp.com"] },
        },
      },
      'k0s-platform:environments.staging.hosts[0]: "*.staging.example.com" is still the seed\'s placeholder, outside domain mycorp.com, so it would get no DNS record and no certificate; use *.staging.mycorp.com',
    ],
    [
      "admin CIDR open to all",
      { ...remote, adminCidrs: ["::/0"] },
      'k0s-platform:adminCidrs[0]: "::/0" must not open SSH and the Kubernetes API to the whole internet',
    ],
    [
      "admin CIDR prefix too long",
      { ...remote, adminCidrs: ["203.0.113.7/33"] },
      'k0s-platform:adminCidrs[0]: "203.0.113.7/33" prefix length must be at most 32',
    ],
    ["no admin CIDRs", { ...remote, adminCidrs: [] }, "k0s-platform:adminCidrs must list at least one CIDR"],
    [
      "admin CIDRs that add up to the internet",
      { ...remote, adminCidrs: ["203.0.113.7/32", "0.0.0.0/1", "128.0.0.0/1"] },
      'k0s-platform:adminCidrs[2]: "128.0.0.0/1" is broader than /24, more than the networks you administer from; allowed: IPv4 /24 to /32, IPv6 /48 to /128',
    ],
    ["admin CIDR ::/1", { ...remote, adminCidrs: ["::/1"] }, 'k0s-platform:adminCidrs[0]: "::/1" is broader than /48'],
    [
      "admin CIDR that is IPv4-mapped IPv6",
      { ...ssh, adminCidrs: ["::ffff:0:0/96"] },
      'k0s-platform:adminCidrs[0]: "::ffff:0:0/96" is IPv4-mapped IPv6 (::ffff:0:0/96), which stands for IPv4 clients; list the IPv4 network itself',
    ],
    [
      "admin CIDR broader than a configured minimum",
      { ...ssh, adminCidrs: ["10.20.0.0/15"], adminCidrMinPrefixIpv4: 16 },
      'k0s-platform:adminCidrs[0]: "10.20.0.0/15" is broader than /16',
    ],
    [
      "minimum IPv4 prefix that admits a provider's network",
      { ...ssh, adminCidrMinPrefixIpv4: 8 },
      'k0s-platform:adminCidrMinPrefixIpv4: "8" must be between 16 and 32',
    ],
    [
      "minimum IPv6 prefix out of range",
      { ...remote, adminCidrMinPrefixIpv6: 129 },
      'k0s-platform:adminCidrMinPrefixIpv6: "129" must be between 32 and 128',
    ],
    [
      "ssh target without admin CIDRs (its only firewall is the host's)",
      { ...ssh, adminCidrs: undefined },
      "k0s-platform:adminCidrs must list at least one CIDR allowed to reach the Kubernetes API and the kubelet through the host firewall",
    ],
    [
      "missing SSH private key",
      { ...remote, sshPrivateKey: undefined },
      "k0s-platform:sshPrivateKey is missing: set it with `pulumi config set --secret sshPrivateKey",
    ],
    [
      "SSH private key that is not a key",
      { ...remote, sshPrivateKey: "hunter2" },
      "k0s-platform:sshPrivateKey is not a PEM/OpenSSH private key",
    ],
    [
      "SSH public key that is not a key",
      { ...remote, sshPublicKey: "AAAAC3Nza" },
      'k0s-platform:sshPublicKey: "AAAAC3Nza" must be an OpenSSH public key line',
    ],
    [
      "remote without an ACME contact",
      { ...remote, acmeEmail: undefined },
      "k0s-platform:acmeEmail is required for the remote and ssh targets",
    ],
    [
      "ACME contact Let's Encrypt refuses",
      { ...ssh, acmeEmail: "ops@example.com" },
      'k0s-platform:acmeEmail: "ops@example.com" must be a real mailbox',
    ],
    ["ACME contact that is no address", { ...remote, acmeEmail: "ops" }, 'k0s-platform:acmeEmail: "ops" must be an e-mail address'],
    [
      "ACME contact that would add YAML where Flux substitutes it",
      { ...remote, acmeEmail: "a@b.c: x" },
      'k0s-platform:acmeEmail: "a@b.c: x" must be an e-mail address such as ops@your-company.com: letters, digits and ._+- before the @',
    ],
    [
      "ACME contact with a quote",
      { ...ssh, acmeEmail: "o'neil@acme.io" },
      `k0s-platform:acmeEmail: "o'neil@acme.io" must be an e-mail address`,
    ],
    [
      "ACME contact on the workstation",
      { ...local, acmeEmail: ACME_EMAIL },
      "k0s-platform:acmeEmail applies to the remote and ssh targets only",
    ],
    [
      "ACME contact on a stack that does not bootstrap the cluster",
      { ...remote, clusterOwnerStack: "remote" },
      "k0s-platform:acmeEmail is set by remote, the stack that bootstraps this cluster",
    ],
    ["unpinned k0s", { ...remote, k0sVersion: "latest" }, 'k0s-platform:k0sVersion: "latest" must be a pinned k0s release'],
    ["k0s checksum not hex", { ...ssh, k0sSha256: "abc" }, 'k0s-platform:k0sSha256: "abc" must be a sha256 in lower-case hex'],
    ["uploaded k0s without a pin", { ...ssh, k0sBinary: "/tmp/k0s" }, "k0s-platform:k0sBinary needs k0sSha256"],
    [
      "backups over plain http://",
      { ...ssh, backup: { endpoint: "http://minio.internal:9000", bucket: "backups", accessKeyId: "AKID" }, backupSecretAccessKey: "s" },
      'k0s-platform:backup.endpoint: "http://minio.internal:9000" must be an https:// endpoint with no path: a backup holds the cluster\'s keys and secrets',
    ],
    [
      "backups on the ssh target without an endpoint",
      { ...ssh, backup: { bucket: "backups", accessKeyId: "AKID" }, backupSecretAccessKey: "s" },
      "k0s-platform:backup.endpoint is required for the ssh target",
    ],
    [
      "backups without their secret",
      { ...remote, backup: { bucket: "acme-backups", accessKeyId: "DO00AKID" } },
      "k0s-platform:backupSecretAccessKey is required with a backup block",
    ],
    [
      "a backup secret without a backup block",
      { ...remote, backupSecretAccessKey: "s" },
      "k0s-platform:backupSecretAccessKey goes with a backup block, which is not set",
    ],
    [
      "a schedule that is not a calendar expression",
      { ...remote, backup: { bucket: "acme-backups", accessKeyId: "DO00AKID", schedule: "daily; rm -rf /" }, backupSecretAccessKey: "s" },
      'k0s-platform:backup.schedule: "daily; rm -rf /" must be a systemd calendar expression',
    ],
    [
      "a retention of nothing",
      { ...remote, backup: { bucket: "acme-backups", accessKeyId: "DO00AKID", retention: 0 }, backupSecretAccessKey: "s" },
      "k0s-platform:backup.retention: 0 must keep from 1 to 1000 archives",
    ],
    [
      "droplet backups on the ssh target",
      { ...ssh, dropletBackups: true },
      "k0s-platform:dropletBackups applies to the remote (DigitalOcean) target only",
    ],
    [
      "a restored k0s version other than the pinned one",
      { ...ssh, k0sVersion: "v1.35.4+k0s.0", k0sRestoredVersion: "v1.35.3+k0s.0" },
      'k0s-platform:k0sRestoredVersion: "v1.35.3+k0s.0" must equal k0sVersion ("v1.35.4+k0s.0")',
    ],
    [
      "SAN that is no name",
      { ...ssh, apiSans: ["https://k0s"] },
      'k0s-platform:apiSans[0]: "https://k0s" must be an IP address or a DNS name',
    ],
    ["ssh target without a host", { ...ssh, sshHost: undefined }, "k0s-platform:sshHost is required for the ssh target"],
    ["ssh host with a scheme", { ...ssh, sshHost: "ssh://k0s" }, 'k0s-platform:sshHost: "ssh://k0s" must be an IP address or a DNS name'],
    ["ssh port out of range", { ...ssh, sshPort: 70000 }, 'k0s-platform:sshPort: "70000" must be a TCP port'],
    ["ssh port not a number", { ...ssh, sshPort: "twenty-two" }, 'k0s-platform:sshPort: "twenty-two" must be a whole number'],
    ["ssh user that is no user name", { ...ssh, sshUser: "Ops Team" }, 'k0s-platform:sshUser: "Ops Team" must be a Unix user name'],
    // Read where it cannot be forged; ssh-keyscan would pin whichever host answers first.
    [
      "ssh target without a host key",
      { ...ssh, sshHostKey: undefined },
      "k0s-platform:sshHostKey is required for the ssh target, so a changed or impostor host is refused: set it to the line `cat /etc/ssh/ssh_host_ed25519_key.pub` prints on the server's console (or your provider's boot log), not to what `ssh-keyscan` gets over the network, which trusts whichever host answers",
    ],
    [
      "host key that is not a key",
      { ...ssh, sshHostKey: "AAAAC3Nza" },
      'k0s-platform:sshHostKey: "AAAAC3Nza" must be an OpenSSH public key line',
    ],
    ["no dial attempts", { ...ssh, sshDialAttempts: 0 }, 'k0s-platform:sshDialAttempts: "0" must be between 1 and 1000'],
    [
      "k0s spec that is not a map",
      { ...ssh, k0sSpec: ["images"] },
      'k0s-platform:k0sSpec: ["images"] must be a map of k0s ClusterConfig spec fields',
    ],
    [
      "droplet settings on the ssh target",
      { ...ssh, region: "nyc3" },
      "k0s-platform:region applies to the remote (DigitalOcean) target only",
    ],
    ["an ssh host for a droplet", { ...remote, sshHost: "203.0.113.9" }, "k0s-platform:sshHost applies to the ssh target only"],
    ["bad region slug", { ...remote, region: "Frankfurt 1" }, 'k0s-platform:region: "Frankfurt 1" must be a DigitalOcean slug'],
    ["bad domain", { ...remote, domain: "https://example.com" }, 'k0s-platform:domain: "https://example.com" must be a DNS name'],
    ["owner stack is itself", { ...local, clusterOwnerStack: "test" }, 'k0s-platform:clusterOwnerStack "test" names this stack'],
  ])("%s", (_name, config, message) => {
    expect(errorOf(config)).toContain(message);
  });

  it("never echoes the SSH private key in an error", () => {
    const secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n-----END OPENSSH PRIVATE KEY-----";
    const message = errorOf({ ...remote, sshPrivateKey: secret, adminCidrs: ["bad"] });
    expect(message).toContain("adminCidrs");
    expect(message).not.toContain("secret-material");
  });

  it("reports every problem at once", () => {
    const message = errorOf({ ...local, target: "cloud", flux: { url: "x" }, environments: { BAD: { client: "a", billingGroup: "b" } } });
    expect(message.split("\n  - ")).toHaveLength(4);
  });
});

describe("parseConfig accepts good input", () => {
  it.each([
    ["local", local],
    ["remote", remote],
    ["ssh", ssh],
  ])("syncs, by default, a %s stack from a cluster folder the starter GitOps repository has", (_, config) => {
    const { path: folder } = parseConfig("test", raw(config)).flux!;
    expect(fs.existsSync(path.join(ROOT, "gitops", folder, "kustomization.yaml")), folder).toBe(true);
  });

  it("takes declared egress, leaving the metadata range out of any block that contains it", () => {
    const egress = [
      { cidr: "203.0.113.10/32", ports: [5432] },
      { cidr: "0.0.0.0/0", ports: ["443"] },
      { cidr: "2001:db8::/32" },
      { cidr: "::/0" },
    ];
    const config = parseConfig("dev", raw({ ...local, environments: { dev: { client: "acme", billingGroup: "enterprise", egress } } }));
    expect(config.environments[0].allowedEgress).toEqual([
      { cidr: "203.0.113.10/32", except: [], ports: [5432] },
      { cidr: "0.0.0.0/0", except: ["169.254.0.0/16"], ports: [443] },
      { cidr: "2001:db8::/32", except: [], ports: [] },
      { cidr: "::/0", except: ["fe80::/10"], ports: [] },
    ]);
  });

  it("applies defaults and keeps quotas exactly as written", () => {
    const config = parseConfig(
      "dev",
      raw({ ...local, environments: { dev: { client: "acme", billingGroup: "enterprise", quota: { pods: 20 } } } }),
    );
    expect(config.environments).toEqual([
      {
        name: "dev",
        client: "acme",
        billingGroup: "enterprise",
        quota: { pods: "20" },
        networkIsolation: true,
        allowedEgress: [],
        hosts: [],
        protect: false,
        priority: 0,
      },
    ]);
    expect(config.flux).toEqual({
      ...DEFAULTS.flux,
      url: local.flux.url,
      path: "./clusters/local",
      manifestPath: undefined,
      auth: { kind: "https", username: "git", token: undefined, caCertificate: undefined },
      clusterSettings: { [ALERT_RECEIVER_VARIABLE]: "none" },
      alertWebhookUrl: "",
    });
    expect(config.cluster).toEqual({ target: "local", kubeconfigPath: DEFAULTS.kubeconfig, context: "Default" });
  });

  it("keeps the SSH private key secret", async () => {
    const config = parseConfig("remote", raw(remote));
    const cluster = config.cluster as Extract<PlatformConfig["cluster"], { target: "remote" }>;
    expect(await pulumi.isSecret(cluster.ssh.privateKey!)).toBe(true);
    expect(cluster.adminCidrs).toEqual(["203.0.113.7/32"]);
  });

  it("lets the SSH agent replace the private key", () => {
    const config = parseConfig("remote", raw({ ...remote, sshPrivateKey: undefined, sshUseAgent: true }));
    const access = (config.cluster as Extract<PlatformConfig["cluster"], { target: "remote" }>).ssh;
    expect(access.privateKey).toBeUndefined();
    expect(access.useAgent).toBe(true);
  });

  it("hands the droplet's sshPublicKey to the install steps and its admin networks to the host firewall", () => {
    const cluster = parseConfig("remote", raw(remote)).cluster as Extract<PlatformConfig["cluster"], { target: "remote" }>;
    expect(cluster.ssh.authorizedKey).toBe(PUBLIC_KEY);
    expect(cluster.ssh.useAgent).toBe(false);
    expect(cluster.k0s.adminCidrs).toEqual(["203.0.113.7/32"]);
  });

  it("accepts admin networks at the configured minimum prefix and IPv6 outside the IPv4-embedding ranges", () => {
    const config = parseConfig(
      "edge",
      raw({ ...ssh, adminCidrs: ["10.20.0.0/16", "2001:db8::/32"], adminCidrMinPrefixIpv4: 16, adminCidrMinPrefixIpv6: 32 }),
    );
    expect((config.cluster as Extract<PlatformConfig["cluster"], { target: "ssh" }>).k0s.adminCidrs).toEqual([
      "10.20.0.0/16",
      "2001:db8::/32",
    ]);
  });

  it("reads the ssh target: the server, how to reach it and which k0s, with defaults", () => {
    const pin = "b".repeat(64);
    const config = parseConfig("edge", raw({ ...ssh, sshPort: "2222", k0sSha256: pin, k0sBinary: "/opt/k0s", apiSans: ["k0s.internal"] }));
    const { ssh: access, ...cluster } = config.cluster as Extract<PlatformConfig["cluster"], { target: "ssh" }>;
    expect(cluster).toEqual({
      target: "ssh",
      host: "k0s.example.com",
      k0s: {
        version: DEFAULTS.k0sVersion,
        versionPinned: false,
        sha256: pin,
        binaryPath: "/opt/k0s",
        airgapImagesPath: undefined,
        extraSans: ["k0s.internal"],
        spec: {},
        adminCidrs: ["198.51.100.0/24"],
      },
    });
    expect({ ...access, privateKey: undefined }).toEqual({
      port: 2222,
      user: "root",
      privateKey: undefined,
      useAgent: false,
      hostKey: HOST_KEY,
      dialAttempts: 30,
    });
  });
});

describe("Flux's access to the GitOps repository", () => {
  const KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  it("takes a private https:// repository's token, with its user and the CA of a self-hosted Git server", () => {
    const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const url = "https://git.acme.internal/gitops.git";
    const config = parseConfig("dev", raw({ ...local, fluxToken: "glpat-x", flux: { url, username: "oauth2", caCertificate: ca } }));
    expect(config.flux!.auth).toEqual({ kind: "https", username: "oauth2", token: "glpat-x", caCertificate: ca });
  });

  it("takes an ssh:// repository with its pinned host keys, for the deploy key the program generates", () => {
    const url = "ssh://git@github.com/acme/gitops.git";
    expect(parseConfig("dev", raw({ ...local, flux: { url, knownHosts: KNOWN_HOSTS } })).flux!.auth).toEqual({
      kind: "ssh",
      knownHosts: KNOWN_HOSTS,
    });
  });

  it("leaves Flux out of a stack whose cluster another stack bootstraps", () => {
    const { flux: _flux, ...withoutFlux } = local;
    expect(parseConfig("local-staging", raw({ ...withoutFlux, clusterOwnerStack: "dev" })).flux).toBeUndefined();
  });
});

describe("sshAgentErrors: the SSH agent only when sshUseAgent asks for it", () => {
  const withKey = parseConfig("edge", raw(ssh));
  const withAgent = parseConfig("edge", raw({ ...ssh, sshPrivateKey: undefined, sshUseAgent: true }));

  it("refuses a run with an agent in reach when sshUseAgent is false, since the command provider would offer its keys", () => {
    expect(sshAgentErrors(withKey, { SSH_AUTH_SOCK: "/run/user/1000/ssh-agent.sock" })).toEqual([
      'k0s-platform:sshUseAgent is false, but SSH_AUTH_SOCK is set ("/run/user/1000/ssh-agent.sock"), and the command provider would offer that agent\'s keys anyway: either use the agent (`pulumi config set sshUseAgent true`, with the key loaded: `ssh-add ~/.ssh/id_ed25519`), or run this command without it (`env -u SSH_AUTH_SOCK pulumi up`)',
    ]);
  });

  it("runs with the private key alone when no agent is in reach", () => {
    expect(sshAgentErrors(withKey, {})).toEqual([]);
    expect(sshAgentErrors(withKey, { SSH_AUTH_SOCK: "" })).toEqual([]);
  });

  it("uses the agent when sshUseAgent is true, and says so when there is none", () => {
    expect(sshAgentErrors(withAgent, { SSH_AUTH_SOCK: "/run/user/1000/ssh-agent.sock" })).toEqual([]);
    expect(sshAgentErrors(withAgent, {})).toEqual([
      'k0s-platform:sshUseAgent is true, but SSH_AUTH_SOCK is not set: run `pulumi up` where an agent holds the key (`eval "$(ssh-agent)"`, `ssh-add ~/.ssh/id_ed25519`), or set sshUseAgent to false and sshPrivateKey',
    ]);
  });

  it("leaves the local target alone: it never dials SSH", () => {
    expect(sshAgentErrors(parseConfig("dev", raw(local)), { SSH_AUTH_SOCK: "/run/user/1000/ssh-agent.sock" })).toEqual([]);
  });
});

/** What Pulumi hands the program besides the stack file: every default Pulumi.yaml declares. */
function projectDefaults(): Record<string, unknown> {
  const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { config: Record<string, { default?: unknown }> };
  return Object.fromEntries(
    Object.entries(project.config).flatMap(([key, declaration]) => ("default" in declaration ? [[key, declaration.default]] : [])),
  );
}

describe("the seed stack files (test/fixtures/stacks: the project's shipped Pulumi.<stack>.yaml, as tests' own copies)", () => {
  const stacks = fs.readdirSync(SEED_STACKS_DIR).flatMap((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1] ?? []);
  /** A seed as the README has a user complete it: the repository's URL, and a remote stack's secrets. */
  const completed = (stack: string) => {
    const seed = seedStackConfig(stack);
    const flux = seed.flux === undefined ? {} : { flux: { ...(seed.flux as object), url: "https://github.com/acme/gitops" } };
    return { ...seed, ...flux, ...(seed.target === "remote" ? secretsForRemote : {}) };
  };

  it("are the three stacks of the workflow", () => {
    expect(stacks.sort()).toEqual(["dev", "local-staging", "remote"]);
  });

  it.each(stacks)("Pulumi.%s.yaml parses, with the project's defaults as Pulumi passes them", (stack) => {
    expect(() => parseConfig(stack, raw({ ...projectDefaults(), ...completed(stack) }))).not.toThrow();
  });

  it("an ssh stack parses with the project's defaults, and a droplet setting changed from its default is refused", () => {
    expect(() => parseConfig("edge", raw({ ...projectDefaults(), ...ssh }))).not.toThrow();
    expect(() => parseConfig("edge", raw({ ...projectDefaults(), ...ssh, region: "nyc3" }))).toThrow(
      "k0s-platform:region applies to the remote",
    );
    expect(() => parseConfig("remote", raw({ ...projectDefaults(), ...remote, sshPort: 2222 }))).toThrow(
      "k0s-platform:sshPort applies to the ssh target only",
    );
  });

  it("local staging carries exactly the remote staging quota and isolation, on the workstation's host names", () => {
    const envOf = (stack: string, name: string) => parseConfig(stack, raw(completed(stack))).environments.find((env) => env.name === name)!;
    const { hosts: localHosts, ...local } = envOf("local-staging", "staging");
    const { hosts: remoteHosts, ...remote } = envOf("remote", "staging");
    expect(local).toEqual(remote);
    expect([localHosts, remoteHosts]).toEqual([["*.staging.localtest.me"], ["*.staging.example.com"]]);
  });
});

describe("Pulumi.yaml", () => {
  const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as {
    name: string;
    config: Record<string, { type?: string; description?: string; default?: unknown; value?: unknown }>;
  };
  const declared = Object.entries(project.config).filter(([key]) => !key.includes(":"));

  it("names the project k0s-platform and turns off the default Kubernetes provider", () => {
    expect(project.name).toBe("k0s-platform");
    expect(project.config["pulumi:disable-default-providers"].value).toEqual(["kubernetes"]);
  });

  it("declares every scalar key with a type, a description and the code's default", () => {
    const { flux: _flux, k0sSpec: _k0sSpec, ...scalarDefaults } = DEFAULTS;
    expect(declared.map(([key]) => key).sort()).toEqual(["target", ...Object.keys(scalarDefaults)].sort());
    for (const [key, declaration] of declared) {
      expect(declaration.type, key).toMatch(/^(string|boolean|array|integer)$/);
      expect(declaration.description, key).toBeTruthy();
      if (key !== "target") expect(declaration.default, key).toEqual(scalarDefaults[key as keyof typeof scalarDefaults]);
    }
  });
});

describe("sshPrivateKey: only a key the program can use without a passphrase, checked before anything is created", () => {
  // Real keys, as ssh-keygen writes them: OpenSSH's own format, PEM (RSA) and PKCS#8.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-keys-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const keygen = (name: string, passphrase: string, ...options: string[]): string => {
    const file = path.join(dir, name);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", ...options, "-N", passphrase, "-C", "test", "-f", file]);
    return fs.readFileSync(file, "utf8");
  };
  const rsa = (name: string, passphrase: string, format: string) => keygen(name, passphrase, "-t", "rsa", "-b", "2048", "-m", format);

  it.each([
    ["an OpenSSH ed25519 key", () => keygen("plain-ed25519", "")],
    ["a PEM RSA key", () => rsa("plain-pem", "", "PEM")],
    ["a PKCS#8 RSA key", () => rsa("plain-pkcs8", "", "PKCS8")],
  ])("accepts %s without a passphrase", (_, key) => {
    expect(() => parseConfig("edge", raw({ ...ssh, sshPrivateKey: key() }))).not.toThrow();
  });

  it.each([
    ["an OpenSSH ed25519 key", () => keygen("locked-ed25519", "correct horse")],
    ["a PEM RSA key (Proc-Type: 4,ENCRYPTED)", () => rsa("locked-pem", "correct horse", "PEM")],
    ["a PKCS#8 RSA key (ENCRYPTED PRIVATE KEY)", () => rsa("locked-pkcs8", "correct horse", "PKCS8")],
  ])("refuses %s behind a passphrase, saying what to do instead, with or without the agent", (_, key) => {
    const locked = key();
    for (const config of [
      { ...ssh, sshPrivateKey: locked },
      { ...remote, sshPrivateKey: locked, sshUseAgent: true },
    ]) {
      const message = errorOf(config);
      expect(message).toContain(
        "k0s-platform:sshPrivateKey is protected by a passphrase, which the program cannot type when it dials (the run would fail at its first SSH step, halfway through): " +
          "either load the key into your SSH agent (`ssh-add ~/.ssh/id_ed25519`), set sshUseAgent to true and remove this key (`pulumi config rm sshPrivateKey`), " +
          "or give the stack a key without a passphrase, kept only in its encrypted config",
      );
      expect(message).not.toContain(locked.split("\n")[1]);
    }
  });
});

describe("tsconfig.json: what `npx tsc --noEmit` reads checks types; the Pulumi CLI alone transpiles only", () => {
  const read = (file: string) => ts.parseConfigFileTextToJson(file, fs.readFileSync(path.join(ROOT, file), "utf8")).config;
  const runtime = (parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { runtime: { options: Record<string, unknown> } })
    .runtime.options;

  it("leaves noCheck out of tsconfig.json, so tsc without flags checks", () => {
    expect(read("tsconfig.json").compilerOptions.noCheck).toBeUndefined();
  });

  it("points the Pulumi CLI at a tsconfig that extends it with noCheck, which the CLI reads from that file itself", () => {
    expect(runtime.tsconfig).toBe("tsconfig.pulumi.json");
    const pulumiConfig = read(runtime.tsconfig as string);
    expect(pulumiConfig).toEqual({ extends: "./tsconfig.json", compilerOptions: { noCheck: true } });
  });
});

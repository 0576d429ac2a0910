/**
 * What K0sOverSsh sends over SSH, rendered by pure functions so each can be tested directly.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { parse, stringify } from "yaml";
import { K0S_RELEASE, upgradeGuardScript } from "./k0sUpgrade";

export { K0S_RELEASE } from "./k0sUpgrade";

/** Where k0s reads its configuration on the host. */
export const K0S_CONFIG_PATH = "/etc/k0s/k0s.yaml";
/** Where the k0s binary lives on the host. */
export const K0S_BINARY_PATH = "/usr/local/bin/k0s";
/**
 * Where the steps upload files (the k0s config, an air-gapped binary and image bundles) for the
 * install step to put in place as root: the SSH user owns it, so a non-root user with sudo can
 * upload, and nothing there takes effect until the install step has checked it.
 */
export const UPLOAD_DIR = "/var/lib/k0s-platform/upload";
/** Where the k0s config waits to be installed at K0S_CONFIG_PATH. */
export const K0S_CONFIG_UPLOAD_PATH = `${UPLOAD_DIR}/k0s.yaml`;
/** Where an uploaded (air-gapped) k0s binary waits for its checksum before it is installed. */
export const K0S_UPLOAD_PATH = `${UPLOAD_DIR}/k0s`;
/** Where uploaded image bundles wait to be copied into K0S_IMAGES_DIR. */
export const IMAGES_UPLOAD_DIR = `${UPLOAD_DIR}/images`;
/** k0s imports every image bundle in this directory (https://docs.k0sproject.io/stable/airgap-install/). */
export const K0S_IMAGES_DIR = "/var/lib/k0s/images";
/**
 * The starter's monitoring keeps its data here (gitops/infrastructure/base/monitoring): a local
 * volume, which must exist before its pod starts; the kubelet then hands it to the pod's user.
 */
export const MONITORING_DATA_DIR = "/var/lib/victoria-metrics";
/** The Kubernetes API port that k0s serves (and the droplet's firewall opens to admins). */
export const KUBE_API_PORT = 6443;

/** A sha256 as release checksum files and sha256sum print it. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface K0sConfigOptions {
  /** Names and addresses the API server certificate must cover besides the host's own. */
  readonly sans: readonly string[];
  /** More of the ClusterConfig's spec (images, network...); the API port and SANs stay these. */
  readonly spec?: Readonly<Record<string, unknown>>;
}

/**
 * A k0s ClusterConfig for a single-node controller+worker. A droplet's reserved IP is NATed onto it,
 * not bound to an interface, so k0s cannot discover it: it must be listed as a SAN or kubectl
 * refuses the certificate.
 */
export function renderK0sConfig(options: K0sConfigOptions): string {
  const extra = options.spec ?? {};
  const api = typeof extra.api === "object" && extra.api !== null ? extra.api : {};
  return stringify({
    apiVersion: "k0s.k0sproject.io/v1beta1",
    kind: "ClusterConfig",
    metadata: { name: "k0s" },
    spec: {
      telemetry: { enabled: false },
      ...extra,
      api: { ...api, port: KUBE_API_PORT, sans: [...new Set(options.sans)] },
    },
  });
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Waits (bounded) until the host's first boot is done, where cloud-init runs it (a droplet), and
 * prepares the directories the next steps and the cluster's monitoring write to: the upload
 * directory belongs to `sshUser`, who uploads into it.
 */
export function waitForHostScript(sshUser: string): string {
  return [
    "set -euo pipefail",
    "if [ -d /var/lib/cloud ]; then",
    "  timeout 300 bash -c 'until [ -f /var/lib/cloud/instance/boot-finished ]; do sleep 2; done' ||",
    `    { echo "the host's first boot (cloud-init) did not finish within 300 s" >&2; exit 1; }`,
    "fi",
    `install -d -m 0700 ${posix.dirname(K0S_CONFIG_PATH)}`,
    `install -d -m 0755 ${K0S_IMAGES_DIR}`,
    `install -d -m 0700 ${MONITORING_DATA_DIR}`,
    `install -d -m 0755 ${posix.dirname(UPLOAD_DIR)}`,
    `install -d -m 0700 ${UPLOAD_DIR} ${IMAGES_UPLOAD_DIR}`,
    // Recursively: what an earlier sshUser uploaded must not block this one's uploads.
    `chown -R ${sshUser} ${UPLOAD_DIR}`,
  ].join("\n");
}

/**
 * `script` as the SSH user runs it: unchanged for root; for anyone else, through `sudo -n`, after a
 * check that says what to configure when sudo would ask for a password (no terminal to answer it).
 */
export function asRoot(script: string, sshUser: string): string {
  if (sshUser === "root") return script;
  return [
    "set -euo pipefail",
    "if ! sudo -n true 2>/dev/null; then",
    `  echo "sshUser ${sshUser} must be root or run sudo without a password (a NOPASSWD entry in /etc/sudoers.d) for the install steps" >&2`,
    "  exit 1",
    "fi",
    `exec sudo -n bash -c ${shellQuote(script)}`,
  ].join("\n");
}

export interface InstallOptions {
  /** The pinned release. */
  readonly version: string;
  /** The binary's pinned sha256; when unset, the release's published sha256sums.txt decides. */
  readonly sha256?: string;
  /** Whether the binary was uploaded to K0S_UPLOAD_PATH instead of being downloaded on the host. */
  readonly uploaded: boolean;
  /** Whether image bundles were uploaded to IMAGES_UPLOAD_DIR. */
  readonly imagesUploaded?: boolean;
}

/**
 * Installs (or upgrades to) the pinned k0s, refusing a downgrade or a skipped minor version against
 * what the host runs (k0sUpgrade.ts), and only once its sha256 matches the pin: a mismatch
 * leaves the installed k0s, its config, its service and the cluster as they were. Then puts the
 * uploaded config (and image bundles) in place, installs the single-node service once, (re)starts it
 * so a changed config takes effect, and waits a bounded time until the API server is ready. Safe to
 * run again: it is the create and the update step.
 */
export function installK0sScript(options: InstallOptions): string {
  const { version, sha256: pinned, uploaded, imagesUploaded = false } = options;
  if (!K0S_RELEASE.test(version)) throw new Error(`[version] "${version}" is not a pinned k0s release such as v1.36.3+k0s.2`);
  if (pinned !== undefined && !SHA256_HEX.test(pinned)) throw new Error(`[sha256] "${pinned}" is not a sha256`);
  if (uploaded && pinned === undefined) throw new Error("[sha256] an uploaded k0s binary needs a pinned sha256");
  const release = `https://github.com/k0sproject/k0s/releases/download/${version}`;
  const curl = "curl --proto '=https' --tlsv1.2 -fsSL --retry 5";
  // k0s publishes a binary per architecture; the host says which it needs.
  const architecture = [
    '  case "$(uname -m)" in',
    '    x86_64 | amd64) asset="k0s-$want-amd64" ;;',
    '    aarch64 | arm64) asset="k0s-$want-arm64" ;;',
    '    *) echo "k0s-platform installs k0s on amd64 and arm64 hosts; this one is $(uname -m)" >&2; exit 1 ;;',
    "  esac",
  ];
  return [
    "set -euo pipefail",
    `want='${version}'`,
    `have=$(${K0S_BINARY_PATH} version 2>/dev/null || true)`,
    ...upgradeGuardScript(),
    'if [ "$have" != "$want" ]; then',
    ...(uploaded
      ? [`  new=${K0S_UPLOAD_PATH}`]
      : [...architecture, `  new=${UPLOAD_DIR}/k0s.download`, `  ${curl} -o "$new" '${release}/'"$asset"`]),
    pinned !== undefined
      ? `  expected='${pinned}'`
      : `  expected=$(${curl} '${release}/sha256sums.txt' | awk -v asset="$asset" '$2 == asset { print $1 }')`,
    `  actual=$(sha256sum "$new" | cut -d' ' -f1)`,
    `  if [ "$actual" != "$expected" ]; then`,
    `    rm -f "$new"`,
    `    echo "refusing to install k0s $want: its sha256 is $actual, expected \${expected:-(none published)}" >&2`,
    "    exit 1",
    "  fi",
    `  install -m 0755 "$new" ${K0S_BINARY_PATH}.new`,
    `  mv -f ${K0S_BINARY_PATH}.new ${K0S_BINARY_PATH}`,
    '  rm -f "$new"',
    "fi",
    `install -m 0600 ${K0S_CONFIG_UPLOAD_PATH} ${K0S_CONFIG_PATH}`,
    ...(imagesUploaded ? [`cp -R --preserve=timestamps ${IMAGES_UPLOAD_DIR}/. ${K0S_IMAGES_DIR}/`] : []),
    "if [ ! -e /etc/systemd/system/k0scontroller.service ]; then",
    `  k0s install controller --single -c ${K0S_CONFIG_PATH}`,
    "fi",
    "systemctl restart k0scontroller",
    "timeout 360 bash -c 'until k0s kubectl get --raw=/readyz >/dev/null 2>&1; do sleep 2; done' ||",
    `  { echo "k0s $want did not become ready within 360 s: see journalctl -u k0scontroller" >&2; exit 1; }`,
    "k0s version",
  ].join("\n");
}

/** Prints the admin kubeconfig (its server is the host's own view of itself). */
export function adminKubeconfigScript(): string {
  return "k0s kubeconfig admin";
}

interface Kubeconfig {
  clusters?: { name?: string; cluster?: { server?: string } }[];
  contexts?: { name?: string; context?: { cluster?: string; user?: string } }[];
  users?: { name?: string }[];
  "current-context"?: string;
}

/**
 * Points every cluster of a kubeconfig at `server`, and names its cluster, user and context `name`
 * (k0s calls every cluster's context `Default`, so two clusters' kubeconfigs would clash when merged).
 * Parses the document rather than replacing text, so certificate data or names that happen to
 * contain the old address are never touched.
 */
export function rewriteKubeconfig(kubeconfig: string, server: string, name: string): string {
  const document = parse(kubeconfig) as Kubeconfig | null;
  const clusters = document?.clusters;
  if (!Array.isArray(clusters) || clusters.length === 0 || clusters.some((entry) => entry.cluster === undefined)) {
    throw new Error("the admin kubeconfig from k0s has no clusters[].cluster to point at the host's address");
  }
  /** `name`, or `name-<n>` for all but the first where there are several. */
  const renamed = <T extends { name?: string }>(entries: T[] | undefined, suffix = "") =>
    new Map((entries ?? []).map((entry, index) => [entry.name, `${name}${suffix}${index === 0 ? "" : `-${index + 1}`}`]));
  const clusterNames = renamed(clusters);
  const userNames = renamed(document!.users, "-admin");
  const contextNames = renamed(document!.contexts);
  for (const entry of clusters) {
    entry.cluster!.server = server;
    entry.name = clusterNames.get(entry.name);
  }
  for (const entry of document!.users ?? []) entry.name = userNames.get(entry.name);
  for (const entry of document!.contexts ?? []) {
    entry.name = contextNames.get(entry.name);
    if (entry.context !== undefined) {
      entry.context.cluster = clusterNames.get(entry.context.cluster) ?? entry.context.cluster;
      entry.context.user = userNames.get(entry.context.user) ?? entry.context.user;
    }
  }
  if (document!["current-context"] !== undefined) document!["current-context"] = contextNames.get(document!["current-context"]);
  return stringify(document);
}

/** `https://<host>:6443`, with IPv6 addresses bracketed. */
export function apiServerUrl(host: string): string {
  return `https://${host.includes(":") ? `[${host}]` : host}:${KUBE_API_PORT}`;
}

/** The kubelet's API port: exec, logs and metrics of every pod on the node. */
export const KUBELET_PORT = 10250;
/** The cloud metadata address, which serves a droplet its user data (its SSH host key among it). */
export const METADATA_ADDRESS = "169.254.169.254";
/** The persistent host firewall the install steps keep on the host, and its systemd unit. */
export const HOST_FIREWALL_PATH = "/usr/local/sbin/k0s-platform-host-firewall";
export const HOST_FIREWALL_UNIT = "k0s-platform-host-firewall.service";
const GUARD_CHAIN = "K0S-PLATFORM-GUARD";
const ADMINS_CHAIN = "K0S-PLATFORM-ADMINS";

/** One of the cluster's pod networks, and the interface its pods' traffic reaches the host on. */
export interface PodNetwork {
  readonly cidr: string;
  /** kube-bridge for kube-router, cali+ for Calico; undefined for a custom CNI: the address alone. */
  readonly iface?: string;
}

/** The pod networks k0s runs for a ClusterConfig spec: k0s's defaults unless the spec says otherwise. */
export function podNetworks(spec: Readonly<Record<string, unknown>>): PodNetwork[] {
  const network = (spec.network ?? {}) as { provider?: string; podCIDR?: string; dualStack?: { enabled?: boolean; IPv6podCIDR?: string } };
  const provider = network.provider ?? "kuberouter";
  const iface = provider === "kuberouter" ? "kube-bridge" : provider === "calico" ? "cali+" : undefined;
  const networks: PodNetwork[] = [{ cidr: network.podCIDR ?? "10.244.0.0/16", iface }];
  if (network.dualStack?.enabled === true && network.dualStack.IPv6podCIDR !== undefined) {
    networks.push({ cidr: network.dualStack.IPv6podCIDR, iface });
  }
  return networks;
}

export interface HostFirewallOptions {
  /** TCP ports only admin networks, the host itself and its pods may reach. */
  readonly ports: readonly number[];
  readonly adminCidrs: readonly string[];
  readonly podNetworks: readonly PodNetwork[];
}

/**
 * Applies the host firewall, IPv4 and IPv6, and is safe to run again: the guard chains are declared,
 * which flushes and refills them in one atomic restore, and PREROUTING jumps to the guard once.
 *
 * The rules live in the raw table's PREROUTING, ahead of every filter chain: kube-router and
 * kube-proxy keep inserting their own ACCEPT rules at the top of INPUT and FORWARD, which would
 * otherwise run before ours. Traffic the host sends itself arrives on lo and is never guarded.
 * Pods reach the API (the kubernetes Service) and the kubelet (metrics-server) from their own
 * network, accepted only on the CNI's interface so the same source addresses from outside are not.
 * Pods never reach the cloud metadata address: on a droplet it serves the user data, which holds the
 * SSH host key (the host's own requests leave through OUTPUT, not PREROUTING, and still work).
 */
export function hostFirewallApplyScript(options: HostFirewallOptions): string {
  const family = (v6: boolean) => {
    const ofFamily = (cidr: string) => cidr.includes(":") === v6;
    return [
      "*raw",
      `:${GUARD_CHAIN} - [0:0]`,
      `:${ADMINS_CHAIN} - [0:0]`,
      `-A ${GUARD_CHAIN} -i lo -j RETURN`,
      ...(v6 ? [] : [`-A ${GUARD_CHAIN} -d ${METADATA_ADDRESS}/32 -j DROP`]),
      ...options.ports.map((port) => `-A ${GUARD_CHAIN} -p tcp -m tcp --dport ${port} -j ${ADMINS_CHAIN}`),
      ...options.podNetworks
        .filter((pods) => ofFamily(pods.cidr))
        .map((pods) => `-A ${ADMINS_CHAIN} -s ${pods.cidr}${pods.iface === undefined ? "" : ` -i ${pods.iface}`} -j RETURN`),
      ...options.adminCidrs.filter(ofFamily).map((cidr) => `-A ${ADMINS_CHAIN} -s ${cidr} -j RETURN`),
      `-A ${ADMINS_CHAIN} -j DROP`,
      "COMMIT",
    ];
  };
  const install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables >/dev/null 2>&1";
  return [
    "set -euo pipefail",
    "if ! command -v iptables-restore >/dev/null || ! command -v ip6tables-restore >/dev/null; then",
    `  command -v apt-get >/dev/null && { ${install} || { apt-get update -q >/dev/null 2>&1 && ${install}; }; } || true`,
    "fi",
    "for tool in iptables iptables-restore ip6tables ip6tables-restore; do",
    `  command -v "$tool" >/dev/null || { echo "no $tool on this host, so no host firewall: install the iptables package" >&2; exit 1; }`,
    "done",
    ...(["iptables", "ip6tables"] as const).flatMap((tool) => {
      const rules = [
        `${tool}-restore --noflush <<'RULES'`,
        ...family(tool === "ip6tables"),
        "RULES",
        `${tool} -t raw -C PREROUTING -j ${GUARD_CHAIN} 2>/dev/null || ${tool} -t raw -I PREROUTING 1 -j ${GUARD_CHAIN}`,
      ];
      // A kernel booted without IPv6 has nothing to guard there (and no ip6tables tables).
      return tool === "iptables" ? rules : ["if [ -e /proc/net/if_inet6 ]; then", ...rules, "fi"];
    }),
  ].join("\n");
}

/**
 * Installs the host firewall for good (a script and a systemd unit that loads it on every boot,
 * before the network and k0s start) and applies it now. Idempotent: same files, same rules.
 */
export function hostFirewallScript(options: HostFirewallOptions): string {
  const unit = [
    "[Unit]",
    `Description=k0s-platform host firewall: ports ${options.ports.join(", ")} for admin networks only`,
    "DefaultDependencies=no",
    "Wants=network-pre.target",
    "After=local-fs.target systemd-modules-load.service",
    "Before=network-pre.target k0scontroller.service",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=${HOST_FIREWALL_PATH}`,
    "[Install]",
    "WantedBy=sysinit.target",
  ];
  return [
    "set -euo pipefail",
    `cat > ${HOST_FIREWALL_PATH}.new <<'SCRIPT'`,
    "#!/bin/bash",
    hostFirewallApplyScript(options),
    "SCRIPT",
    `chmod 0755 ${HOST_FIREWALL_PATH}.new`,
    `mv -f ${HOST_FIREWALL_PATH}.new ${HOST_FIREWALL_PATH}`,
    `cat > /etc/systemd/system/${HOST_FIREWALL_UNIT} <<'UNIT'`,
    ...unit,
    "UNIT",
    "systemctl daemon-reload",
    `systemctl enable ${HOST_FIREWALL_UNIT} 2>/dev/null`,
    HOST_FIREWALL_PATH,
  ].join("\n");
}

/** `value` as one single-quoted shell word. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Makes `publicKey` the only key in the SSH user's authorized_keys: a rotated key reaches the host
 * without rebuilding it, and the old key stops working. Written to a temporary file and renamed, so
 * a lost connection never leaves the file half-written (and the host unreachable).
 */
export function authorizedKeysScript(publicKey: string): string {
  return [
    "set -euo pipefail",
    `key=${shellQuote(publicKey)}`,
    'install -d -m 0700 "$HOME/.ssh"',
    'tmp=$(mktemp "$HOME/.ssh/authorized_keys.XXXXXX")',
    `printf '%s\\n' "$key" > "$tmp"`,
    'chmod 0600 "$tmp"',
    'mv -f "$tmp" "$HOME/.ssh/authorized_keys"',
  ].join("\n");
}

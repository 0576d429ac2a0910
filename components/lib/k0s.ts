/**
 * What K0sOverSsh sends over SSH, rendered by pure functions so each can be tested directly.
 */
import { createHash } from "node:crypto";
import { parse, stringify } from "yaml";

/** Where k0s reads its configuration on the host. */
export const K0S_CONFIG_PATH = "/etc/k0s/k0s.yaml";
/** Where the k0s binary lives on the host. */
export const K0S_BINARY_PATH = "/usr/local/bin/k0s";
/** Where an uploaded (air-gapped) k0s binary waits for its checksum before it is installed. */
export const K0S_UPLOAD_PATH = "/usr/local/bin/k0s.upload";
/** k0s imports every image bundle in this directory (https://docs.k0sproject.io/stable/airgap-install/). */
export const K0S_IMAGES_DIR = "/var/lib/k0s/images";
/** The Kubernetes API port that k0s serves (and the droplet's firewall opens to admins). */
export const KUBE_API_PORT = 6443;

/** A pinned k0s release tag, such as v1.35.4+k0s.0. */
export const K0S_RELEASE = /^v[0-9]+\.[0-9]+\.[0-9]+\+k0s\.[0-9]+$/;
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
 * prepares the directories the next steps write to.
 */
export function waitForHostScript(): string {
  return [
    "set -euo pipefail",
    "if [ -d /var/lib/cloud ]; then",
    "  timeout 300 bash -c 'until [ -f /var/lib/cloud/instance/boot-finished ]; do sleep 2; done' ||",
    `    { echo "the host's first boot (cloud-init) did not finish within 300 s" >&2; exit 1; }`,
    "fi",
    `install -d -m 0700 ${K0S_CONFIG_PATH.replace(/\/[^/]+$/, "")}`,
    `install -d -m 0755 ${K0S_IMAGES_DIR}`,
  ].join("\n");
}

export interface InstallOptions {
  /** The pinned release. */
  readonly version: string;
  /** The binary's pinned sha256; when unset, the release's published sha256sums.txt decides. */
  readonly sha256?: string;
  /** Whether the binary was uploaded to K0S_UPLOAD_PATH instead of being downloaded on the host. */
  readonly uploaded: boolean;
}

/**
 * Installs (or upgrades to) the pinned k0s, but only once its sha256 matches the pin: a mismatch
 * leaves the installed k0s, its service and the cluster as they were. Then installs the single-node
 * service once, (re)starts it so a changed config takes effect, and waits a bounded time until the
 * API server is ready. Safe to run again: it is the create and the update step.
 */
export function installK0sScript(options: InstallOptions): string {
  const { version, sha256: pinned, uploaded } = options;
  if (!K0S_RELEASE.test(version)) throw new Error(`[version] "${version}" is not a pinned k0s release such as v1.35.4+k0s.0`);
  if (pinned !== undefined && !SHA256_HEX.test(pinned)) throw new Error(`[sha256] "${pinned}" is not a sha256`);
  if (uploaded && pinned === undefined) throw new Error("[sha256] an uploaded k0s binary needs a pinned sha256");
  const release = `https://github.com/k0sproject/k0s/releases/download/${version}`;
  const asset = `k0s-${version}-amd64`;
  const download = (url: string, to: string) => `curl --proto '=https' --tlsv1.2 -fsSL --retry 5 -o ${to} '${url}'`;
  return [
    "set -euo pipefail",
    `want='${version}'`,
    `if [ "$(${K0S_BINARY_PATH} version 2>/dev/null || true)" != "$want" ]; then`,
    ...(uploaded ? [`  new=${K0S_UPLOAD_PATH}`] : [`  new=${K0S_BINARY_PATH}.new`, `  ${download(`${release}/${asset}`, "$new")}`]),
    pinned !== undefined
      ? `  expected='${pinned}'`
      : `  expected=$(curl --proto '=https' --tlsv1.2 -fsSL --retry 5 '${release}/sha256sums.txt' | awk '$2 == "${asset}" { print $1 }')`,
    `  actual=$(sha256sum "$new" | cut -d' ' -f1)`,
    `  if [ "$actual" != "$expected" ]; then`,
    `    rm -f "$new"`,
    `    echo "refusing to install k0s $want: its sha256 is $actual, expected \${expected:-(none published)}" >&2`,
    "    exit 1",
    "  fi",
    `  chmod 0755 "$new"`,
    `  mv "$new" ${K0S_BINARY_PATH}`,
    "fi",
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
}

/**
 * Points every cluster of a kubeconfig at `server`. Parses the document rather than replacing text,
 * so certificate data or names that happen to contain the old address are never touched.
 */
export function rewriteKubeconfigServer(kubeconfig: string, server: string): string {
  const document = parse(kubeconfig) as Kubeconfig | null;
  const clusters = document?.clusters;
  if (!Array.isArray(clusters) || clusters.length === 0 || clusters.some((entry) => entry.cluster === undefined)) {
    throw new Error("the admin kubeconfig from k0s has no clusters[].cluster to point at the host's address");
  }
  for (const entry of clusters) entry.cluster!.server = server;
  return stringify(document);
}

/** `https://<host>:6443`, with IPv6 addresses bracketed. */
export function apiServerUrl(host: string): string {
  return `https://${host.includes(":") ? `[${host}]` : host}:${KUBE_API_PORT}`;
}

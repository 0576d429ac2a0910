/**
 * What RemoteK0sCluster sends over SSH, rendered by pure functions so each can be tested directly.
 */
import { createHash } from "node:crypto";
import { parse, stringify } from "yaml";

/** Where k0s reads its configuration on the droplet. */
export const K0S_CONFIG_PATH = "/etc/k0s/k0s.yaml";
/** The Kubernetes API port that k0s serves and the firewall opens to admins. */
export const KUBE_API_PORT = 6443;

export interface K0sConfigOptions {
  /** Names and addresses the API server certificate must cover besides the droplet's own. */
  readonly sans: readonly string[];
}

/**
 * A k0s ClusterConfig for a single-node controller+worker. The reserved IP is NATed onto the droplet,
 * not bound to an interface, so k0s cannot discover it: it must be listed as a SAN or kubectl refuses
 * the certificate.
 */
export function renderK0sConfig(options: K0sConfigOptions): string {
  return stringify({
    apiVersion: "k0s.k0sproject.io/v1beta1",
    kind: "ClusterConfig",
    metadata: { name: "k0s" },
    spec: {
      api: { port: KUBE_API_PORT, sans: [...options.sans] },
      telemetry: { enabled: false },
    },
  });
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Waits (bounded) until cloud-init is done and the droplet can take our files. */
export function waitForHostScript(): string {
  return [
    "set -euo pipefail",
    "timeout 300 bash -c 'until [ -f /var/lib/cloud/instance/boot-finished ]; do sleep 5; done'",
    `install -d -m 0700 ${K0S_CONFIG_PATH.replace(/\/[^/]+$/, "")}`,
  ].join("\n");
}

/**
 * Installs (or upgrades to) the pinned k0s, installs the single-node service once, (re)starts it so a
 * changed config takes effect, and waits a bounded time until the API server is ready. Safe to run
 * again: it is the create and the update step.
 */
export function installK0sScript(k0sVersion: string): string {
  if (!/^v[0-9]+\.[0-9]+\.[0-9]+\+k0s\.[0-9]+$/.test(k0sVersion)) {
    throw new Error(`[k0sVersion] "${k0sVersion}" is not a pinned k0s release such as v1.35.1+k0s.0`);
  }
  const url = `https://github.com/k0sproject/k0s/releases/download/${k0sVersion}/k0s-${k0sVersion}-amd64`;
  return [
    "set -euo pipefail",
    `want='${k0sVersion}'`,
    'if [ "$(/usr/local/bin/k0s version 2>/dev/null || true)" != "$want" ]; then',
    `  curl --proto '=https' --tlsv1.2 -fsSL --retry 5 -o /usr/local/bin/k0s.new '${url}'`,
    "  chmod 0755 /usr/local/bin/k0s.new",
    "  mv /usr/local/bin/k0s.new /usr/local/bin/k0s",
    "fi",
    "if [ ! -e /etc/systemd/system/k0scontroller.service ]; then",
    `  k0s install controller --single -c ${K0S_CONFIG_PATH}`,
    "fi",
    "systemctl restart k0scontroller",
    "timeout 360 bash -c 'until k0s kubectl get --raw=/readyz >/dev/null 2>&1; do sleep 5; done'",
    "k0s version",
  ].join("\n");
}

/** Prints the admin kubeconfig (its server is the droplet's private view of itself). */
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
    throw new Error("the admin kubeconfig from k0s has no clusters[].cluster to point at the reserved IP");
  }
  for (const entry of clusters) entry.cluster!.server = server;
  return stringify(document);
}

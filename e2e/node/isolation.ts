/**
 * The isolation probe: an agnhost server (pod and Service; agnhost is the Kubernetes end-to-end
 * suite's own test server, the sample app here) in each environment namespace, a client in each
 * namespace including Traefik's, and a TCP connect from every client to every server, by pod IP and
 * by Service IP, with `agnhost connect` (as Kubernetes' own NetworkPolicy tests probe). What
 * kube-router enforces on the node decides each cell; the table is what a user would want to read.
 */
import { stringify } from "yaml";
import { SAMPLE_APP_IMAGE } from "./gitopsRepo";
import type { TestNode } from "./node";

export const PROBE = "isolation-probe";
const PORT = 9898;

/** What Pod Security `restricted` asks of a pod (every environment namespace enforces it). */
export const RESTRICTED_POD = { runAsUser: 100, runAsGroup: 101, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };
export const RESTRICTED_CONTAINER = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };

export interface Probe {
  readonly from: string;
  readonly to: string;
  readonly via: "pod" | "service";
  readonly reachable: boolean;
}

/** Starts a probe pod and its Service in each namespace and waits until the pods are Ready. */
export function deployProbes(node: TestNode, namespaces: readonly string[]): void {
  const objects = namespaces.flatMap((namespace) => [
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: PROBE, namespace, labels: { "app.kubernetes.io/name": PROBE } },
      spec: {
        securityContext: RESTRICTED_POD,
        containers: [
          {
            name: "agnhost",
            image: SAMPLE_APP_IMAGE,
            command: ["/agnhost", "porter"],
            env: [{ name: `SERVE_PORT_${PORT}`, value: namespace }],
            readinessProbe: { tcpSocket: { port: PORT }, periodSeconds: 1 },
            securityContext: RESTRICTED_CONTAINER,
          },
        ],
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: PROBE, namespace },
      spec: { selector: { "app.kubernetes.io/name": PROBE }, ports: [{ port: PORT, targetPort: PORT }] },
    },
  ]);
  node.kubectl(["apply", "-f", "-"], { input: stringify({ apiVersion: "v1", kind: "List", items: objects }) });
  for (const namespace of namespaces) node.kubectl(["wait", "--for=condition=Ready", `pod/${PROBE}`, "-n", namespace, "--timeout=180s"]);
}

/** Whether the probe pod in `from` opens a TCP connection to `address` (host:port, a name resolves through the cluster's DNS). */
export function connects(node: TestNode, from: string, address: string): boolean {
  try {
    node.kubectl(["exec", "-n", from, PROBE, "--", "/agnhost", "connect", address, "--timeout=2s"]);
    return true;
  } catch {
    return false;
  }
}

/** Runs every client -> server probe; `servers` are the namespaces whose probe serves. */
export function probeAll(node: TestNode, clients: readonly string[], servers: readonly string[]): Probe[] {
  const targets = servers.flatMap((namespace) => {
    const podIp = node.kubectl(["get", "pod", PROBE, "-n", namespace, "-o", "jsonpath={.status.podIP}"]).trim();
    const serviceIp = node.kubectl(["get", "service", PROBE, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"]).trim();
    return [
      { to: namespace, via: "pod" as const, address: `${podIp}:${PORT}` },
      { to: namespace, via: "service" as const, address: `${serviceIp}:${PORT}` },
    ];
  });
  return clients.flatMap((from) => targets.map(({ to, via, address }) => ({ from, to, via, reachable: connects(node, from, address) })));
}

/** The probes as a table: one row per client namespace, one column per server namespace and path. */
export function isolationTable(probes: readonly Probe[]): string {
  const columns = [...new Set(probes.map((probe) => `${probe.to} (${probe.via})`))];
  const rows = [...new Set(probes.map((probe) => probe.from))];
  const cell = (from: string, column: string) => {
    const probe = probes.find((candidate) => candidate.from === from && `${candidate.to} (${candidate.via})` === column);
    return probe === undefined ? "" : probe.reachable ? "open" : "blocked";
  };
  const header = ["from \\ to", ...columns];
  const lines = [header, ...rows.map((from) => [from, ...columns.map((column) => cell(from, column))])];
  const widths = header.map((_, index) => Math.max(...lines.map((line) => line[index].length)));
  return lines.map((line) => line.map((text, index) => text.padEnd(widths[index])).join("  ")).join("\n");
}

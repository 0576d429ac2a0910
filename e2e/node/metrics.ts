/**
 * The cluster's VictoriaMetrics as the README reaches it: `kubectl port-forward` on the workstation's
 * 127.0.0.1, for the length of one use.
 */
import { startDaemon, waitFor } from "../harness/processes";
import { KUBECTL, type TestNode } from "./node";

export interface MetricsSeries {
  metric: Record<string, string>;
  value: [number, string];
}

/** Runs `use` while the port-forward is up: `query` answers an instant query (at `time`, seconds, if given). */
export async function withMetrics<T>(
  node: TestNode,
  use: (metrics: { url: string; query: (promql: string, time?: number) => MetricsSeries[] }) => Promise<T>,
): Promise<T> {
  const [command, ...args] = node.onNode([...KUBECTL, "port-forward", "-n", "monitoring", "svc/victoria-metrics", "18428:8428"]);
  const forward = startDaemon("monitoring-port-forward", command, args, { logDir: node.dir });
  const url = "http://127.0.0.1:18428";
  const query = (promql: string, time?: number) => {
    const params = ["--data-urlencode", `query=${promql}`, ...(time === undefined ? [] : ["--data-urlencode", `time=${time}`])];
    return JSON.parse(node.exec("curl", ["-sf", "--max-time", "5", "http://127.0.0.1:18428/api/v1/query", ...params])).data
      .result as MetricsSeries[];
  };
  try {
    await waitFor(
      "VictoriaMetrics through the port-forward",
      () => node.exec("curl", ["-sf", "--max-time", "5", "http://127.0.0.1:18428/health"]).trim() === "OK" || undefined,
      120_000,
      1_000,
    );
    return await use({ url, query });
  } finally {
    await forward.stop(1_000);
  }
}

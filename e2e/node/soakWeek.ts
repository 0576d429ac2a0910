/**
 * Two back-dated weeks of the series the soak's alert rules read, as the kubelet's cAdvisor, the
 * Kustomizations' readiness exporter and the scraper itself would have written them every 30 s, for
 * VictoriaMetrics' import API (one JSON line per series). Each week lives in a namespace of its own,
 * so one replay of the rules over the week judges both:
 *
 * - `soak-healthy`: a container that never restarts, whose memory follows a daily rhythm with noise
 *   and never grows; what a healthy week still holds: a Kustomization waiting for its dependency
 *   for minutes, one failed reconciliation that the next retry clears, a scrape target down for two
 *   minutes while its pod is replaced. No rule may fire.
 * - `soak-sick`: the same container OOM-killed and restarted, leaking memory by the day; a
 *   Kustomization failing for ten minutes; a scrape target down for ten. Each rule must fire, at
 *   the time the scenario gives it.
 */
const STEP_MS = 30_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const MI = 2 ** 20;

export const HEALTHY_NAMESPACE = "soak-healthy";
export const SICK_NAMESPACE = "soak-sick";

/** When, after the week's start, each alert of the sick week starts to hold (its rule's `for` aside). */
export const SICK_WEEK_FAULTS = {
  ContainerOOMKilled: 2 * DAY_MS,
  ContainerRestarted: 2 * DAY_MS,
  FluxKustomizationNotReady: 5 * DAY_MS,
  MonitoringTargetDown: 6 * DAY_MS,
} as const;

export interface SoakWeeks {
  readonly start: number;
  readonly end: number;
  /** VictoriaMetrics' /api/v1/import body. */
  readonly importLines: string;
}

/** Both weeks, ending at `end` (milliseconds). */
export function soakWeeks(end: number): SoakWeeks {
  const start = end - 7 * DAY_MS;
  const lines: string[] = [];
  const series = (name: string, labels: Record<string, string>, value: (t: number) => number | undefined) => {
    const timestamps: number[] = [];
    const values: number[] = [];
    for (let t = start; t <= end; t += STEP_MS) {
      const sample = value(t - start);
      if (sample === undefined) continue;
      timestamps.push(t);
      values.push(sample);
    }
    lines.push(JSON.stringify({ metric: { __name__: name, job: "soak", ...labels }, values, timestamps }));
  };
  const during = (from: number, length: number) => (elapsed: number) => elapsed >= from && elapsed < from + length;
  // A deterministic noise: the same week on every run.
  const noise = (elapsed: number) => Math.sin(elapsed / 7_919) * Math.cos(elapsed / 104_729);

  // The healthy week.
  const healthy = { namespace: HEALTHY_NAMESPACE, pod: "app-7d9f", container: "app" };
  const healthyRun = { ...healthy, id: "/kubepods/healthy-run-1" };
  series("container_start_time_seconds", healthyRun, () => start / 1000);
  series("container_memory_working_set_bytes", healthyRun, (t) => (80 + 20 * Math.sin((2 * Math.PI * t) / DAY_MS) + 5 * noise(t)) * MI);
  series("container_spec_memory_limit_bytes", healthyRun, () => 256 * MI);
  series("container_oom_events_total", healthyRun, () => 0);
  const waiting = during(1 * DAY_MS, 3 * MINUTE_MS);
  const retried = during(3 * DAY_MS, 1 * MINUTE_MS);
  const readiness = { namespace: HEALTHY_NAMESPACE, name: "apps-healthy" };
  series("flux_kustomization_ready", { ...readiness, reason: "ReconciliationSucceeded" }, (t) =>
    waiting(t) || retried(t) ? undefined : 1,
  );
  series("flux_kustomization_ready", { ...readiness, reason: "DependencyNotReady" }, (t) => (waiting(t) ? 0 : undefined));
  series("flux_kustomization_ready", { ...readiness, reason: "ReconciliationFailed" }, (t) => (retried(t) ? 0 : undefined));
  series("up", { namespace: HEALTHY_NAMESPACE, instance: "healthy-target" }, (t) => (during(4 * DAY_MS, 2 * MINUTE_MS)(t) ? 0 : 1));

  // The sick week: the first run leaks until the OOM killer ends it; the second run leaks on.
  const sick = { namespace: SICK_NAMESPACE, pod: "app-5c4b", container: "app" };
  const restartAt = SICK_WEEK_FAULTS.ContainerRestarted;
  const leak = (t: number) => (40 + 25 * (t / DAY_MS) + 3 * noise(t)) * MI;
  const firstRun = { ...sick, id: "/kubepods/sick-run-1" };
  const secondRun = { ...sick, id: "/kubepods/sick-run-2" };
  series("container_start_time_seconds", firstRun, (t) => (t < restartAt ? start / 1000 : undefined));
  series("container_start_time_seconds", secondRun, (t) => (t >= restartAt ? (start + restartAt) / 1000 : undefined));
  for (const [run, alive] of [
    [firstRun, (t: number) => t < restartAt],
    [secondRun, (t: number) => t >= restartAt],
  ] as const) {
    series("container_memory_working_set_bytes", run, (t) => (alive(t) ? leak(t) : undefined));
    series("container_spec_memory_limit_bytes", run, (t) => (alive(t) ? 256 * MI : undefined));
  }
  // The OOM event is counted in the dying run's last scrape.
  series("container_oom_events_total", firstRun, (t) => (t < restartAt - STEP_MS ? 0 : t < restartAt ? 1 : undefined));
  series("container_oom_events_total", secondRun, (t) => (t >= restartAt ? 0 : undefined));
  const failing = during(SICK_WEEK_FAULTS.FluxKustomizationNotReady, 10 * MINUTE_MS);
  const sickReadiness = { namespace: SICK_NAMESPACE, name: "apps-sick" };
  series("flux_kustomization_ready", { ...sickReadiness, reason: "ReconciliationSucceeded" }, (t) => (failing(t) ? undefined : 1));
  series("flux_kustomization_ready", { ...sickReadiness, reason: "ReconciliationFailed" }, (t) => (failing(t) ? 0 : undefined));
  series("up", { namespace: SICK_NAMESPACE, instance: "sick-target" }, (t) =>
    during(SICK_WEEK_FAULTS.MonitoringTargetDown, 10 * MINUTE_MS)(t) ? 0 : 1,
  );

  return { start, end, importLines: `${lines.join("\n")}\n` };
}

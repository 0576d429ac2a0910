/**
 * The alert delay, timed on the node rung's test cluster of k0s's components (not k0s): how long
 * after a fault the stack's webhook hears of it, with the starter's rules and intervals as shipped
 * (30 s scrapes and evaluations, each rule's `for`, Alertmanager's 10 s group wait). Two faults at
 * once on a workstation brought up as the README says: a staging container killed, as the OOM killer
 * or a crash would, and a commit that staging's Kustomization cannot apply; then the fix, and how
 * long until the webhook hears that it is resolved.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";
import { parse } from "yaml";
import { waitFor } from "../harness/processes";
import { editYaml } from "../node/gitopsRepo";
import { withMetrics } from "../node/metrics";
import { startWorkstation, type Workstation } from "../node/workstation";
import { report } from "./report";

let workstation: Workstation | undefined;

afterAll(async () => {
  await workstation?.stop();
});

/** Sets staging's replicas in its overlay's Deployment patch. */
function setStagingReplicas(dir: string, replicas: unknown): void {
  editYaml(path.join(dir, "apps/overlays/staging/podinfo-deployment.yaml"), (patch) => {
    patch.spec.replicas = replicas;
  });
}

it("measures how long the stack's webhook takes to hear of a restart and of a commit Flux cannot apply", async () => {
  workstation = await startWorkstation();
  const { node, repo, server } = workstation;
  for (const stack of ["dev", "local-staging"] as const) workstation.bringUp(stack);
  await workstation.fluxSynced(1_000);
  const [pod] = node
    .kubectl(["get", "pods", "-n", "staging", "-l", "app.kubernetes.io/name=podinfo", "-o", "jsonpath={.items[*].metadata.name}"])
    .split(/\s+/);
  const replicas: unknown = parse(fs.readFileSync(path.join(repo.workDir, "apps/overlays/staging/podinfo-deployment.yaml"), "utf8")).spec
    .replicas;

  // A restart shows as a second run of a container: the first must have been scraped before the kill.
  await withMetrics(node, ({ query }) =>
    waitFor(
      `${pod}'s container in VictoriaMetrics`,
      () => query(`container_start_time_seconds{namespace="staging", pod="${pod}", container="podinfo"}`).length > 0 || undefined,
      180_000,
      3_000,
    ),
  );

  const faulted = Date.now();
  node.killContainer("staging", pod);
  repo.commit("Scale staging's podinfo (with a typo)", (dir) => setStagingReplicas(dir, "two"));
  // Flux retries every minute, each retry a new transition: the failure's time is its first.
  const failedAt = await waitFor(
    "apps-staging to fail the commit",
    async () => {
      const object = await node.client.get("/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps-staging");
      const ready = (object.status?.conditions ?? []).find((condition: { type: string }) => condition.type === "Ready");
      return ready?.status === "False" ? Date.parse(ready.lastTransitionTime) : undefined;
    },
    300_000,
    1_000,
  );
  const restart = await server.alertDelivered("firing", { alertname: "ContainerRestarted", namespace: "staging", pod }, faulted, 600_000);
  const notReady = await server.alertDelivered(
    "firing",
    { alertname: "FluxKustomizationNotReady", name: "apps-staging" },
    faulted,
    900_000,
  );

  const fixed = Date.now();
  repo.commit("Fix the typo in staging's replicas", (dir) => setStagingReplicas(dir, replicas));
  const resolved = await server.alertDelivered(
    "resolved",
    { alertname: "FluxKustomizationNotReady", name: "apps-staging" },
    fixed,
    900_000,
  );
  expect(resolved.alert.labels.name).toBe("apps-staging");

  const after = (from: number, to: number) => (to - from) / 1000;
  report(
    "Alert delay: seconds until the stack's webhook hears of a fault (starter's rules and intervals as shipped; no reconcile requested)",
    ["fault", "alert", "after the fault", "after Flux marked it failed"],
    [
      ["a staging container killed", "ContainerRestarted", after(faulted, restart.receivedAt), "—"],
      [
        "a commit apps-staging cannot apply (pushed)",
        "FluxKustomizationNotReady",
        after(faulted, notReady.receivedAt),
        after(failedAt, notReady.receivedAt),
      ],
      ["the fix pushed", "FluxKustomizationNotReady resolved", after(fixed, resolved.receivedAt), "—"],
    ],
  );
}, 2_400_000);

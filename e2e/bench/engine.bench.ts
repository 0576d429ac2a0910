/**
 * Wall time of the real engine on the throwaway control plane: `preview` and `up` of each local stack
 * next to a one-namespace baseline program, then no-op `up` and `refresh` against `preview`.
 */
import * as k8s from "@pulumi/kubernetes";
import { afterAll, beforeAll, it } from "vitest";
import { clusterForTests, TestCluster } from "../cluster";
import { Engine, localStackOverrides, startEngine } from "../pulumiHarness";
import { report, seconds } from "./report";

let cluster: TestCluster;
let engine: Engine;

beforeAll(async () => {
  cluster = await clusterForTests();
  engine = await startEngine({ usePath: process.env.PULUMI_E2E_USE_PATH === "1" });
}, 300_000);

afterAll(async () => {
  engine?.dispose();
  await cluster?.stop();
});

it("times preview, up, no-op up and refresh against a baseline", async () => {
  const overrides = localStackOverrides(engine, cluster);

  // The smallest program with the same provider wiring: one namespace.
  const baselineProgram = () => {
    const provider = new k8s.Provider("baseline", { kubeconfig: cluster.kubeconfigPath, context: cluster.context });
    new k8s.core.v1.Namespace("baseline", { metadata: { name: "baseline" } }, { provider });
    return Promise.resolve({});
  };
  const stacks = [
    [
      "baseline (1 namespace)",
      await engine.stack("baseline", {}, { program: baselineProgram, config: { "k0s-platform:target": "local" } }),
    ],
    ["dev", await engine.stack("dev", overrides)],
    ["local-staging", await engine.stack("local-staging", overrides)],
  ] as const;

  // The first engine run pays for loading the program's modules and starting the plugin: keep that
  // out of whichever stack happens to go first. (local-staging cannot preview before dev is up.)
  for (const [, stack] of stacks.slice(0, 2)) await stack.preview();
  const rows: (string | number)[][] = [];
  for (const [label, stack] of stacks) {
    const preview = await seconds(() => stack.preview());
    const up = await seconds(() => stack.up());
    const noopPreview = await seconds(() => stack.preview());
    const noopUp = await seconds(() => stack.up());
    const refresh = await seconds(() => stack.refresh());
    rows.push([label, preview, up, noopPreview, noopUp, refresh]);
  }
  const [baseline] = rows;
  report(
    "Engine wall time on the throwaway control plane (seconds)",
    ["stack", "preview", "up", "no-op preview", "no-op up", "refresh"],
    rows,
  );
  report(
    "Ratios",
    ["stack", "preview ÷ baseline", "up ÷ baseline", "no-op up ÷ no-op preview", "refresh ÷ no-op preview"],
    rows.map((row) => [
      row[0],
      Number(row[1]) / Number(baseline[1]),
      Number(row[2]) / Number(baseline[2]),
      Number(row[4]) / Number(row[3]),
      Number(row[5]) / Number(row[3]),
    ]),
  );
  for (const [, stack] of [...stacks].reverse()) await stack.destroy();
}, 900_000);

/**
 * Wall time of the real pulumi CLI on the throwaway API server: `preview` and `up` of each local
 * stack next to a one-namespace baseline program, then no-op `up` and `refresh` against `preview`.
 * Each run includes starting the program (an Automation API inline program in a fresh process, in
 * place of the Node.js language host that cannot be built here) and the provider.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, it } from "vitest";
import { clusterForTests, stackSettings, type TestCluster } from "../apiserver/cluster";
import { pulumiCli, type PulumiCli } from "../harness/pulumiCli";
import { report, seconds } from "./report";

let cluster: TestCluster;
let cli: PulumiCli;
let workDir: string;

beforeAll(async () => {
  cluster = await clusterForTests();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-bench-"));
  cli = pulumiCli(workDir);
}, 300_000);

afterAll(async () => {
  await cluster?.stop();
  if (workDir !== undefined) fs.rmSync(workDir, { recursive: true, force: true });
});

it("times preview, up, no-op up and refresh against a baseline", async () => {
  // The smallest program with the same provider wiring: one namespace.
  const baseline = cli.sideProject(
    "baseline",
    [
      'import * as k8s from "@pulumi/kubernetes";',
      'import * as pulumi from "@pulumi/pulumi";',
      "const config = new pulumi.Config();",
      'const provider = new k8s.Provider("baseline", { kubeconfig: config.require("kubeconfig"), context: config.require("kubeContext") });',
      'new k8s.core.v1.Namespace("baseline", { metadata: { name: "baseline" } }, { provider });',
      "",
    ].join("\n"),
  );
  const stacks: [label: string, stack: string, cwd: string][] = [
    ["baseline (1 namespace)", "baseline", baseline],
    ["dev (Flux, age key, dev)", "dev", cli.projectDir],
    ["local-staging (staging only)", "local-staging", cli.projectDir],
  ];
  for (const [, stack, cwd] of stacks) {
    const set = (...args: string[]) => cli.pulumi("config", "set", "--stack", stack, "--cwd", cwd, ...args);
    cli.pulumi("stack", "init", stack, "--cwd", cwd);
    set("target", "local");
    // The baseline program reads no Flux settings; it gets dev's only so that it is set alike.
    for (const [key, value] of Object.entries(stackSettings(cluster, { bootstrapsFlux: stack !== "local-staging" })))
      set("--path", key, value);
  }
  const pulumi = (stack: string, cwd: string, ...args: string[]) => seconds(() => cli.pulumi(...args, "--stack", stack, "--cwd", cwd));
  const rows: (string | number)[][] = [];
  for (const [label, stack, cwd] of stacks) {
    const preview = await pulumi(stack, cwd, "preview");
    const up = await pulumi(stack, cwd, "up", "--yes", "--skip-preview");
    const noopPreview = await pulumi(stack, cwd, "preview");
    const noopUp = await pulumi(stack, cwd, "up", "--yes", "--skip-preview");
    const refresh = await pulumi(stack, cwd, "refresh", "--yes", "--skip-preview");
    rows.push([label, preview, up, noopPreview, noopUp, refresh]);
  }
  const [baselineRow] = rows;
  report("pulumi CLI on the throwaway API server (seconds)", ["stack", "preview", "up", "no-op preview", "no-op up", "refresh"], rows);
  report(
    "Ratios",
    [
      "stack",
      "preview ÷ baseline",
      "up ÷ baseline",
      "no-op preview ÷ baseline",
      "no-op up ÷ baseline",
      "no-op up ÷ no-op preview",
      "refresh ÷ no-op preview",
    ],
    rows.map((row) => [
      row[0],
      Number(row[1]) / Number(baselineRow[1]),
      Number(row[2]) / Number(baselineRow[2]),
      Number(row[3]) / Number(baselineRow[3]),
      Number(row[4]) / Number(baselineRow[4]),
      Number(row[4]) / Number(row[3]),
      Number(row[5]) / Number(row[3]),
    ]),
  );
  for (const [, stack, cwd] of [...stacks].reverse()) cli.pulumi("destroy", "--yes", "--skip-preview", "--stack", stack, "--cwd", cwd);
}, 900_000);

/**
 * Figures on the node rung's test cluster of k0s's components (not k0s), as ratios measured in one
 * run: `pulumi up` of dev and local-staging to every Flux Kustomization Ready, against `kubectl apply`
 * of exactly the objects those runs created (read back from the stacks' state) plus the same wait,
 * each on a fresh node of the same kit; the node's start; a warm no-op `pulumi up`; and `pulumi up`
 * on the node against the same stack on the bare API server.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, it } from "vitest";
import { stringify } from "yaml";
import { clusterForTests, stackSettings } from "../apiserver/cluster";
import { waitFor } from "../harness/processes";
import { pulumiCli, type PulumiCli } from "../harness/pulumiCli";
import { startWorkstation, type Workstation } from "../node/workstation";
import { revealed } from "../../scripts/lib/stateSecrets";
import { report, seconds } from "./report";

const STACKS = ["dev", "local-staging"] as const;

let running: Workstation | undefined;

afterAll(async () => {
  await running?.stop();
});

/** Starts a fresh node and times it to API ready and to node Ready. */
async function freshNode(): Promise<{ workstation: Workstation; apiReady: number; nodeReady: number }> {
  const started = Date.now();
  const workstation = await startWorkstation();
  running = workstation;
  const apiReady = (Date.now() - started) / 1000;
  await waitFor(
    "the node Ready",
    () =>
      workstation.node.kubectl(["get", "node", "-o", "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].status}"]) === "True" ||
      undefined,
    300_000,
    500,
  );
  return { workstation, apiReady, nodeReady: (Date.now() - started) / 1000 };
}

/** Every Kubernetes object a stack's last `up` created, as the inputs its state records. */
function createdObjects(cli: PulumiCli, stack: string): Record<string, any>[] {
  const state = JSON.parse(cli.pulumi("stack", "export", "--show-secrets", "--stack", stack)) as {
    deployment: { resources: { type: string; custom?: boolean; inputs?: Record<string, unknown> }[] };
  };
  return state.deployment.resources
    .filter((resource) => resource.custom && resource.type.startsWith("kubernetes:") && !resource.type.startsWith("pulumi:providers:"))
    .map((resource) => revealed(resource.inputs) as Record<string, any>)
    .filter((object) => typeof object.kind === "string" && object.kind !== "List");
}

it("times pulumi up to every Kustomization Ready against kubectl apply of the same objects, each on a fresh node", async () => {
  // pulumi, as a user runs it.
  const first = await freshNode();
  const { cli } = first.workstation;
  for (const stack of STACKS) first.workstation.prepare(stack);
  const upStarted = Date.now();
  const upDev = await seconds(() => cli.pulumi("up", "--stack", "dev", "--yes", "--skip-preview"));
  cli.pulumi("up", "--stack", "local-staging", "--yes", "--skip-preview");
  await first.workstation.fluxSynced(1_000);
  const pulumiConverged = (Date.now() - upStarted) / 1000;
  const noopUp = await seconds(() => cli.pulumi("up", "--stack", "dev", "--yes", "--skip-preview"));
  const objects = STACKS.flatMap((stack) => createdObjects(cli, stack));
  const firstRepoUrl = first.workstation.repo.url;
  await first.workstation.stop();
  running = undefined;

  // The same objects with kubectl on a node started the same way: Namespaces and CRDs first (custom
  // resources need their CRDs established), then everything else, then the same wait.
  const second = await freshNode();
  const { node, repo } = second.workstation;
  const manifest = (selected: Record<string, any>[]) =>
    stringify({ apiVersion: "v1", kind: "List", items: selected }).replaceAll(firstRepoUrl, repo.url);
  const definitions = objects.filter((object) => ["Namespace", "CustomResourceDefinition"].includes(object.kind));
  const rest = objects.filter((object) => !definitions.includes(object));
  const kubectlConverged = await seconds(async () => {
    node.kubectl(["apply", "--server-side", "-f", "-"], { input: manifest(definitions) });
    node.kubectl(["wait", "--for=condition=Established", "customresourcedefinitions", "--all", "--timeout=120s"]);
    node.kubectl(["apply", "--server-side", "-f", "-"], { input: manifest(rest) });
    await second.workstation.fluxSynced(1_000);
  });
  await second.workstation.stop();
  running = undefined;

  // The same stack on the bare API server, where nothing can run Flux's controllers.
  const apiServer = await clusterForTests();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-bench-"));
  let bareUp: number;
  try {
    const bare = pulumiCli(dir);
    bare.pulumi("stack", "init", "dev");
    for (const [key, value] of Object.entries(stackSettings(apiServer, { bootstrapsFlux: true })))
      bare.pulumi("config", "set", "--stack", "dev", "--path", key, value);
    bareUp = await seconds(() => bare.pulumi("up", "--stack", "dev", "--yes", "--skip-preview"));
  } finally {
    await apiServer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  report(
    "The test cluster of k0s's components (seconds)",
    [
      "node start to API ready / node Ready",
      `pulumi up dev + local-staging to every Kustomization Ready (${objects.length} objects)`,
      "kubectl apply of the same objects + the same wait",
      "pulumi up dev alone",
      "no-op up dev",
      "up dev, bare API server",
    ],
    [[`${first.apiReady.toFixed(0)} / ${first.nodeReady.toFixed(0)}`, pulumiConverged, kubectlConverged, upDev, noopUp, bareUp]],
  );
  report(
    "Ratios on the node",
    ["pulumi to Ready ÷ kubectl to Ready (goal ≤ 1.5)", "up dev on the node ÷ on the bare API server", "no-op up ÷ up"],
    [[pulumiConverged / kubectlConverged, upDev / bareUp, noopUp / upDev]],
  );
}, 2_400_000);

/**
 * Figures on the node rung's test cluster of k0s's components (not k0s), as ratios measured in one run: the node's start; Flux's install by
 * `pulumi up --stack dev` against `kubectl apply -f install.yaml` plus `kubectl wait` on the same node;
 * `pulumi up` on the node against the same stack on the bare API server; `pulumi up` to every
 * Kustomization Ready; and a warm no-op `pulumi up`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, it } from "vitest";
import { clusterForTests, stackSettings } from "../apiserver/cluster";
import { waitFor } from "../harness/processes";
import { pulumiCli } from "../harness/pulumiCli";
import { FLUX_INSTALL_MANIFEST } from "../harness/toolchain";
import { startWorkstation, type Workstation } from "../node/workstation";
import { report, seconds } from "./report";

let workstation: Workstation | undefined;

afterAll(async () => {
  await workstation?.stop();
});

it("times the node, Flux's install, pulumi up and Flux's convergence", async () => {
  const started = Date.now();
  workstation = await startWorkstation();
  const { node, cli } = workstation;
  const apiReady = (Date.now() - started) / 1000;
  await waitFor(
    "the node Ready",
    () => node.kubectl(["get", "node", "-o", "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].status}"]) === "True" || undefined,
    300_000,
    500,
  );
  const nodeReady = (Date.now() - started) / 1000;

  // Flux's own way first, twice (the first pays for the containers' first start, which a user's
  // node has paid long before), then removed again so that pulumi installs it on the same warm node.
  const kubectlInstall = async () => {
    const took = await seconds(() => {
      node.kubectl(["apply", "--server-side", "-f", FLUX_INSTALL_MANIFEST]);
      node.kubectl(["wait", "--for=condition=Available", "deployment", "--all", "-n", "flux-system", "--timeout=300s"]);
    });
    node.kubectl(["delete", "--wait=true", "-f", FLUX_INSTALL_MANIFEST]);
    return took;
  };
  const kubectlCold = await kubectlInstall();
  const kubectlWarm = await kubectlInstall();

  workstation.prepare("dev");
  const upStarted = Date.now();
  const nodeUp = await seconds(() => cli.pulumi("up", "--stack", "dev", "--yes", "--skip-preview"));
  workstation.bringUp("local-staging");
  await workstation.fluxSynced(1_000);
  const converged = (Date.now() - upStarted) / 1000;
  const noopUp = await seconds(() => cli.pulumi("up", "--stack", "dev", "--yes", "--skip-preview"));

  // The same stack on the bare API server, where nothing can run Flux's controllers.
  const apiServer = await clusterForTests();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-bench-"));
  let bareUp: number;
  try {
    const bare = pulumiCli(dir);
    bare.pulumi("stack", "init", "dev");
    for (const [key, value] of Object.entries(stackSettings(apiServer)))
      bare.pulumi("config", "set", "--stack", "dev", "--path", key, value);
    bareUp = await seconds(() => bare.pulumi("up", "--stack", "dev", "--yes", "--skip-preview"));
  } finally {
    await apiServer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  report(
    "The test cluster of k0s's components (seconds)",
    [
      "node start to API ready",
      "to node Ready",
      "kubectl apply + wait (Flux), first / again",
      "pulumi up dev (Flux + age key + dev)",
      "up dev to every Kustomization Ready",
      "no-op up dev",
      "up dev, bare API server",
    ],
    [[apiReady, nodeReady, `${kubectlCold.toFixed(1)} / ${kubectlWarm.toFixed(1)}`, nodeUp, converged, noopUp, bareUp]],
  );
  report(
    "Ratios on the node",
    ["pulumi up dev ÷ kubectl apply + wait, again (goal ≤ 1.5)", "up dev on the node ÷ on the bare API server", "no-op up ÷ up"],
    [[nodeUp / kubectlWarm, nodeUp / bareUp, noopUp / nodeUp]],
  );
}, 1_800_000);

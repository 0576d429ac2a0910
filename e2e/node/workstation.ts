/**
 * A workstation as the README sets one up, on a test cluster of k0s's components (not k0s, which
 * cannot be built here) configured from k0s/workstation.yaml (with the test drop-in), the starter GitOps repository on a Git server with a chart repository beside it,
 * and the pulumi CLI running on the node. The node story, the benchmark and the demo start from it.
 */
import * as path from "node:path";
import { MONITORING_DATA_DIR } from "../../components/lib/k0s";
import { pulumiCli, ROOT, type PulumiCli } from "../harness/pulumiCli";
import { waitFor } from "../harness/processes";
import { FLUX_INSTALL_MANIFEST, TOOLCHAIN } from "../harness/toolchain";
import { createGitopsRepo, type GitopsRepo } from "./gitopsRepo";
import { startGitopsServer, type GitopsServer } from "./gitopsServer";
import { startNode, type TestNode } from "./node";

export interface Workstation {
  readonly node: TestNode;
  readonly server: GitopsServer;
  readonly repo: GitopsRepo;
  readonly cli: PulumiCli;
  /** `pulumi config set` for each entry (with --path; `secrets` with --secret too), as the README's quickstart does. */
  configure(stack: string, settings: Record<string, string>, secrets?: Record<string, string>): void;
  /**
   * The README's quickstart for a local stack, before its `up`: select it; for dev, which bootstraps
   * Flux, point it at the private repository with the Git server's token and CA.
   */
  prepare(stack: "dev" | "local-staging"): void;
  /** `prepare`, then `pulumi up`. */
  bringUp(stack: "dev" | "local-staging"): string;
  /** Resolves once every Flux Kustomization the cluster syncs reports Ready. */
  fluxSynced(pollMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** A field of each Flux Kustomization's Ready condition (its status, or when it last changed), by name. */
export function readyConditions(node: TestNode, field: "status" | "lastTransitionTime"): Record<string, string> {
  const listed = node.kubectl([
    "get",
    "kustomizations",
    "-n",
    "flux-system",
    "-o",
    `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=='Ready')].${field}} {end}`,
  ]);
  return Object.fromEntries(
    listed
      .trim()
      .split(" ")
      .filter((entry) => entry !== "")
      .map((entry) => entry.split("=")),
  );
}

export async function startWorkstation(): Promise<Workstation> {
  const node = await startNode({
    k0sConfigPath: path.join(ROOT, "k0s", "workstation.yaml"),
    testConfigPath: path.join(__dirname, "k0s-test.yaml"),
  });
  try {
    // The README's install step for monitoring's data directory (k0s itself is not run here).
    node.exec("install", ["-d", "-m", "0700", MONITORING_DATA_DIR]);
    const server = await startGitopsServer(node, { chartsDir: path.join(TOOLCHAIN, "charts") });
    const repo = createGitopsRepo(server, server.chartsUrl);
    // The CLI runs on the workstation: inside the node's mount and network namespaces.
    const cli = pulumiCli(path.join(node.dir, "pulumi"), (argv, cwd) => node.onNode(argv, cwd));
    const configure = (stack: string, settings: Record<string, string>, secrets: Record<string, string> = {}) => {
      cli.pulumi("stack", "select", "--create", stack);
      // Each value on stdin, as the README has a PEM or a key set (`< ca.pem`): one that starts with
      // dashes would be taken for a flag on the command line.
      const set = (flags: string[], key: string, value: string) => {
        const result = cli.run(["config", "set", "--stack", stack, ...flags, key], { input: value });
        if (result.status !== 0) throw new Error(`pulumi config set ${key} failed:\n${result.output}`);
      };
      for (const [key, value] of Object.entries(settings)) set(["--path"], key, value);
      for (const [key, value] of Object.entries(secrets)) set(["--secret", "--path"], key, value);
    };
    const prepare = (stack: "dev" | "local-staging") =>
      stack === "dev"
        ? configure(
            stack,
            {
              "flux.url": repo.url,
              "flux.username": server.username,
              "flux.caCertificate": server.caCertificate,
              // Offline, Flux's release download is out of reach: dev (which installs Flux) takes the kit's.
              "flux.manifestPath": FLUX_INSTALL_MANIFEST,
            },
            // Alerts go to the LAN's webhook, as a team's go to its chat.
            { fluxToken: server.token, alertWebhookUrl: server.alertWebhookUrl },
          )
        : configure(stack, {});
    return {
      node,
      server,
      repo,
      cli,
      configure,
      prepare,
      bringUp(stack) {
        prepare(stack);
        return cli.pulumi("up", "--stack", stack, "--yes", "--skip-preview");
      },
      async fluxSynced(pollMs = 2_000) {
        const expected = repo.kustomizations();
        await waitFor(
          `every Kustomization Ready (${expected.join(", ")})`,
          () => {
            const ready = readyConditions(node, "status");
            return expected.every((name) => ready[name] === "True") || undefined;
          },
          900_000,
          pollMs,
        );
      },
      async stop() {
        await server.stop();
        await node.stop();
      },
    };
  } catch (error) {
    await node.stop();
    throw error;
  }
}

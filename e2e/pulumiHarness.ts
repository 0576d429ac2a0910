/**
 * Drives the real program through a real Pulumi engine with the Automation API: a local file backend
 * and passphrase secrets in a temp dir (no Pulumi Cloud), the Kubernetes provider plugin from the
 * toolchain, and the repository's own Pulumi.yaml and stack files with only the cluster target and
 * the Flux manifest source overridden.
 */
import { LocalWorkspace, PulumiCommand, PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { vi } from "vitest";
import { parse, stringify } from "yaml";

export const ROOT = path.resolve(__dirname, "..");
export const TOOLCHAIN = path.join(ROOT, ".cache", "toolchain");
const KUBERNETES_PROVIDER_VERSION = (
  JSON.parse(fs.readFileSync(require.resolve("@pulumi/kubernetes/package.json"), "utf8")) as { version: string }
).version;

/** Where the engine and the cluster come from. */
export interface EngineOptions {
  /** Use `pulumi` and its plugins from PATH instead of the toolchain build (PULUMI_E2E_USE_PATH=1). */
  readonly usePath: boolean;
}

export interface Engine {
  readonly dir: string;
  /**
   * Selects (creating on first use) a stack of the project, configured from the repository's
   * Pulumi.<name>.yaml with `overrides` merged in. `custom` swaps in another program and base config
   * (the benchmark's baseline).
   */
  stack(name: string, overrides: Record<string, unknown>, custom?: { program: PulumiFn; config: Record<string, unknown> }): Promise<Stack>;
  /** Rewrites one stack's config (as the user would edit Pulumi.<stack>.yaml). */
  writeStackConfig(name: string, config: Record<string, unknown>): void;
  readStackConfig(name: string): Record<string, unknown>;
  /**
   * What a user sees from `pulumi stack export` (the Automation API's exportStack shows secrets),
   * followed by the backend's raw state files for the stack.
   */
  exportedState(name: string): string;
  dispose(): void;
}

/**
 * The only stack config the e2e changes: the cluster (this kubeconfig and context) and Flux's
 * install manifest. Flux's release download is unreachable here, so its CRDs come from the
 * controllers' Go modules (built by e2e/toolchain), after the flux-system namespace. Nothing can
 * schedule Flux's controllers on a node-less control plane, so `up` must not wait for them.
 */
export function localStackOverrides(engine: Engine, cluster: { kubeconfigPath: string; context: string }): Record<string, unknown> {
  const manifestPath = path.join(engine.dir, "flux-install.yaml");
  const namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n---\n";
  fs.writeFileSync(manifestPath, namespace + fs.readFileSync(path.join(TOOLCHAIN, "flux-crds.yaml"), "utf8"));
  return { kubeconfig: cluster.kubeconfigPath, kubeContext: cluster.context, flux: { manifestPath, waitForControllers: false } };
}

/** The real program, freshly evaluated on each engine run, as `pulumi up` would. */
async function program(): Promise<Record<string, unknown>> {
  vi.resetModules();
  return { ...((await import("../index")) as Record<string, unknown>) };
}

export async function startEngine(options: EngineOptions): Promise<Engine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-e2e-"));
  const home = path.join(dir, "pulumi-home");
  const workDir = path.join(dir, "project");
  fs.mkdirSync(path.join(dir, "state"), { recursive: true });
  fs.mkdirSync(workDir);
  fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(workDir, "Pulumi.yaml"));

  const bin = path.join(TOOLCHAIN, "bin");
  const env: Record<string, string> = {
    PULUMI_HOME: home,
    PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "e2e-only-passphrase",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // Should a default provider ever slip through, it finds no cluster rather than the user's.
    KUBECONFIG: path.join(dir, "no-ambient-kubeconfig"),
    PATH: options.usePath ? (process.env.PATH ?? "") : `${bin}:${process.env.PATH ?? ""}`,
  };
  const pulumiBinary = options.usePath ? "pulumi" : path.join(bin, "pulumi");
  if (!options.usePath) {
    // Installed under PULUMI_HOME at the exact version @pulumi/kubernetes asks the engine for.
    execFileSync(
      pulumiBinary,
      [
        "plugin",
        "install",
        "resource",
        "kubernetes",
        `v${KUBERNETES_PROVIDER_VERSION}`,
        "--file",
        path.join(bin, "pulumi-resource-kubernetes"),
      ],
      { env: { ...process.env, ...env }, stdio: "pipe" },
    );
  }
  const pulumiCommand = await PulumiCommand.get({
    root: options.usePath ? undefined : path.dirname(path.dirname(pulumiBinary)),
    skipVersionCheck: true,
  });
  const stackFile = (name: string) => path.join(workDir, `Pulumi.${name}.yaml`);

  const readStackConfig = (name: string) => (parse(fs.readFileSync(stackFile(name), "utf8")) as { config: Record<string, unknown> }).config;
  const writeStackConfig = (name: string, config: Record<string, unknown>) => fs.writeFileSync(stackFile(name), stringify({ config }));

  const exportedState = (name: string) => {
    const exported = execFileSync(pulumiBinary, ["stack", "export", "--stack", name], {
      cwd: workDir,
      env: { ...process.env, ...env },
      encoding: "utf8",
      // The state holds every Flux CRD's schema: several megabytes.
      maxBuffer: 256 * 1024 * 1024,
    });
    const stateFiles = fs
      .readdirSync(path.join(dir, "state"), { recursive: true, encoding: "utf8" })
      .filter((file) => path.basename(file).startsWith(`${name}.json`))
      .map((file) => fs.readFileSync(path.join(dir, "state", file), "utf8"));
    if (stateFiles.length === 0) throw new Error(`no state file for stack ${name}`);
    return [exported, ...stateFiles].join("\n");
  };

  return {
    dir,
    readStackConfig,
    writeStackConfig,
    exportedState,
    async stack(name, overrides, custom) {
      const original =
        custom?.config ??
        (parse(fs.readFileSync(path.join(ROOT, `Pulumi.${name}.yaml`), "utf8")) as { config: Record<string, unknown> }).config;
      const config = { ...original };
      for (const [key, value] of Object.entries(overrides)) {
        const current = config[`k0s-platform:${key}`];
        config[`k0s-platform:${key}`] =
          typeof value === "object" && value !== null && typeof current === "object" ? { ...(current as object), ...value } : value;
      }
      writeStackConfig(name, config);
      return LocalWorkspace.createOrSelectStack(
        { stackName: name, projectName: "k0s-platform", program: custom?.program ?? program },
        { workDir, envVars: env, pulumiHome: home, pulumiCommand },
      );
    },
    dispose() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

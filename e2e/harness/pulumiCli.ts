/**
 * The real `pulumi` CLI and engine driving the real program: a copy of the project (Pulumi.yaml,
 * the stack files, index.ts, components/, tsconfig.json, package.json, with node_modules linked), a
 * local file backend and passphrase-encrypted secrets in a work directory, and the engine and the
 * Kubernetes provider from the toolchain. `up`, `preview`, `refresh` and `destroy` run the program
 * as an Automation API inline program (inlineProgram.ts), since the Node.js language host that
 * `pulumi up` starts on a user's machine cannot be built here; every other command is the CLI's own.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SEED_STACKS_DIR } from "../../test/lib/seedStacks";
import { runAsync as runProcessAsync } from "./processes";
import { TOOLCHAIN, TOOLCHAIN_BIN } from "./toolchain";

export const ROOT = path.resolve(__dirname, "..", "..");
/** The files a user's checkout holds that the program needs at run time. */
const PROJECT_FILES = ["Pulumi.yaml", "index.ts", "components", "tsconfig.json", "tsconfig.pulumi.json", "package.json"];
const PASSPHRASE = "e2e-only-passphrase";
/** The commands that run the program, and the process that serves it to the engine for them. */
const PROGRAM_OPERATIONS = ["up", "preview", "refresh", "destroy"];
const INLINE_PROGRAM = [process.execPath, require.resolve("tsx/cli"), path.join(__dirname, "inlineProgram.ts")];

export interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for messages a user reads. */
  readonly output: string;
}

export interface PulumiCli {
  readonly projectDir: string;
  readonly stateDir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Runs `pulumi <args>` in the project; never throws. */
  run(args: readonly string[], options?: { input?: string }): CliResult;
  /** The same, without blocking this process (for what must happen while the CLI runs). */
  runAsync(args: readonly string[]): Promise<CliResult>;
  /** Runs `pulumi <args>` and returns stdout; throws with the whole output when it fails. */
  pulumi(...args: string[]): string;
  /** The resource changes of a stack's last update, as `pulumi stack history` reports them. */
  lastChanges(stack: string): Record<string, number>;
  /**
   * Another program under the project's own Pulumi.yaml (and so its config and disabled default
   * provider), for comparisons; run it with `--cwd <returned dir>`.
   */
  sideProject(name: string, indexTs: string): string;
}

/**
 * Sets up a project copy and a backend under `dir`. `wrap` turns a command line (run in `cwd`) into
 * the one that runs it where the cluster is (for a test node: nsenter into its namespaces).
 */
export function pulumiCli(dir: string, wrap: (argv: string[], cwd: string) => string[] = (argv) => argv): PulumiCli {
  const projectDir = path.join(dir, "project");
  const stateDir = path.join(dir, "state");
  fs.mkdirSync(projectDir, { recursive: true });
  fs.mkdirSync(stateDir, { recursive: true });
  for (const file of PROJECT_FILES) fs.cpSync(path.join(ROOT, file), path.join(projectDir, file), { recursive: true });
  // The stack files as shipped: the checkout's own are the user's to change.
  fs.cpSync(SEED_STACKS_DIR, projectDir, { recursive: true });
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(projectDir, "node_modules"));

  const env: NodeJS.ProcessEnv = {
    HOME: dir,
    PATH: `${TOOLCHAIN_BIN}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    PULUMI_HOME: path.join(dir, "pulumi-home"),
    // HOME is the work directory, so the inline program's process must be told where the toolchain is.
    K0S_PLATFORM_TOOLCHAIN: TOOLCHAIN,
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // Should a default provider ever slip through, it finds no cluster rather than the user's.
    KUBECONFIG: path.join(dir, "no-ambient-kubeconfig"),
    NO_COLOR: "1",
  };
  const commandLine = (args: readonly string[]) =>
    wrap(PROGRAM_OPERATIONS.includes(args[0]) ? [...INLINE_PROGRAM, ...args] : [path.join(TOOLCHAIN_BIN, "pulumi"), ...args], projectDir);
  const run = (args: readonly string[], options: { input?: string } = {}): CliResult => {
    const [command, ...rest] = commandLine(args);
    const result = spawnSync(command, rest, { cwd: projectDir, env, encoding: "utf8", input: options.input, maxBuffer: 256 * 1024 * 1024 });
    const stdout = result.stdout ?? "";
    const stderr = result.stderr ?? "";
    return { status: result.status ?? -1, stdout, stderr, output: `${stdout}\n${stderr}` };
  };
  const runAsync = async (args: readonly string[]): Promise<CliResult> => {
    const [command, ...rest] = commandLine(args);
    const { status, stdout, stderr } = await runProcessAsync(command, rest, { cwd: projectDir, env });
    return { status, stdout, stderr, output: `${stdout}\n${stderr}` };
  };
  const cli: PulumiCli = {
    projectDir,
    stateDir,
    env,
    run,
    runAsync,
    pulumi(...args) {
      const result = run(args);
      if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed (${result.status}):\n${result.output}`);
      return result.stdout;
    },
    lastChanges(stack) {
      const history = JSON.parse(cli.pulumi("stack", "history", "--json", "--stack", stack)) as {
        resourceChanges: Record<string, number>;
      }[];
      return history[0].resourceChanges;
    },
    sideProject(name, indexTs) {
      const side = path.join(dir, name);
      fs.mkdirSync(side);
      for (const file of ["Pulumi.yaml", "tsconfig.json", "tsconfig.pulumi.json", "package.json"])
        fs.copyFileSync(path.join(projectDir, file), path.join(side, file));
      fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(side, "node_modules"));
      fs.writeFileSync(path.join(side, "index.ts"), indexTs);
      return side;
    },
  };
  installKubernetesPlugin(cli);
  return cli;
}

/** The provider plugin, installed at the exact version @pulumi/kubernetes asks the engine for. */
export function installKubernetesPlugin(cli: Pick<PulumiCli, "pulumi">): void {
  const version = (JSON.parse(fs.readFileSync(require.resolve("@pulumi/kubernetes/package.json"), "utf8")) as { version: string }).version;
  cli.pulumi(
    "plugin",
    "install",
    "resource",
    "kubernetes",
    `v${version}`,
    "--file",
    path.join(TOOLCHAIN_BIN, "pulumi-resource-kubernetes"),
  );
}

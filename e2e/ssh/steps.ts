/**
 * The program's SSH steps, read from the program itself and run over real SSH.
 *
 * `declaredSshSteps` loads index.ts under the unit tests' Pulumi mocks (test/lib/program.ts) with a
 * stack's config and collects every `command:remote:Command` and `command:remote:CopyToRemote` it
 * declares: scripts, files, connection, triggers and the order their dependencies impose. Nothing
 * here re-types a script or a path.
 *
 * `runStep` does what the command provider does with one step, with Debian's OpenSSH client: a
 * Command's `create` runs in one session (sshd hands it to the user's shell, as the provider's
 * session.Run does), with its `stdin`; a CopyToRemote's source is written to `remotePath` over SFTP
 * (scp's protocol since OpenSSH 9). The connection's host key is the only one accepted. What the
 * provider alone decides (dial retries, when a step is replaced, reading outputs back into state) is
 * not modelled: those are asserted on the program's inputs under mocks (test/stack-ssh.test.ts).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SECRET_KEYS } from "../../components/config";
import { mockCloud } from "../../test/lib/cloud";
import { runProgram, withFluxFixture, type ProgramRun } from "../../test/lib/program";
import { reveal, type Registration } from "../../test/mocks";

const COMMAND = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";

export interface Connection {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: string;
  readonly hostKey: string;
  readonly dialErrorLimit?: number;
  readonly perDialTimeout?: number;
}

export interface SshStep {
  readonly type: typeof COMMAND | typeof COPY;
  readonly name: string;
  readonly connection: Connection;
  readonly triggers: readonly unknown[];
  /** Command: the script its create runs, its update's, and its stdin. */
  readonly create?: string;
  readonly update?: string;
  readonly stdin?: string;
  /** CopyToRemote: where, and the content (a StringAsset's text or a FileAsset's bytes). */
  readonly remotePath?: string;
  readonly content?: Buffer;
  /** Names of the steps this one waits for. */
  readonly after: readonly string[];
}

export interface DeclaredProgram {
  /** The SSH steps in the order the dependencies impose (declaration order among equals). */
  readonly steps: readonly SshStep[];
  readonly run: ProgramRun;
  step(suffix: string): SshStep;
}

/**
 * Loads the program for `stack` with `config` (Flux from the test fixture; the private key as a
 * secret, as `pulumi config set --secret` makes it) and returns its SSH steps in order.
 * `adminKubeconfig` is what the mocked admin-kubeconfig step reports, as the engine would after a
 * real run.
 */
export async function declaredSshSteps(
  stack: string,
  config: Record<string, unknown>,
  adminKubeconfig?: string,
  /** The k0s version the stack's state says it installed last (its k0sVersion output); none: a first run. */
  installedK0sVersion?: string,
): Promise<DeclaredProgram> {
  const cloud = mockCloud({
    ...(adminKubeconfig === undefined ? {} : { adminKubeconfig }),
    stackOutputs: installedK0sVersion === undefined ? {} : { k0sVersion: installedK0sVersion },
  });
  // Stored as a user stores them: every secret key the config sets, with --secret.
  const run = await runProgram(
    stack,
    withFluxFixture(config),
    cloud,
    Object.keys(SECRET_KEYS).filter((key) => key in config),
  );
  const registrations = run.registrations.filter((entry) => entry.type === COMMAND || entry.type === COPY);
  const nameByUrn = new Map(registrations.map((entry) => [run.urns.get(entry.id), entry.name]));
  const unordered = await Promise.all(registrations.map((entry) => toStep(entry, nameByUrn)));
  const steps: SshStep[] = [];
  const pending = [...unordered];
  while (pending.length > 0) {
    const ready = pending.findIndex((step) => step.after.every((name) => steps.some((done) => done.name === name)));
    if (ready < 0) throw new Error(`the SSH steps' dependencies form a cycle: ${pending.map((step) => step.name).join(", ")}`);
    steps.push(...pending.splice(ready, 1));
  }
  return {
    steps,
    run,
    step(suffix) {
      const found = steps.filter((step) => step.name.endsWith(`-${suffix}`));
      if (found.length !== 1) throw new Error(`expected one SSH step named *-${suffix}, found ${found.length}`);
      return found[0];
    },
  };
}

async function toStep(entry: Registration, nameByUrn: Map<string | undefined, string>): Promise<SshStep> {
  const inputs = reveal(entry.inputs) as Record<string, unknown>;
  const known = new Set(["connection", "triggers", "create", "update", "stdin", "logging", "remotePath", "source"]);
  const unmodelled = Object.keys(inputs).filter((key) => !known.has(key) && inputs[key] !== undefined);
  // environment, delete, interpreter...: the provider's handling of them is not modelled here.
  if (unmodelled.length > 0) throw new Error(`${entry.name} declares inputs this harness does not run: ${unmodelled.join(", ")}`);
  const after = entry.options.dependencies.map((urn) => nameByUrn.get(urn)).filter((name): name is string => name !== undefined);
  const base = {
    type: entry.type as SshStep["type"],
    name: entry.name,
    connection: inputs.connection as Connection,
    triggers: (inputs.triggers as unknown[]) ?? [],
    after,
  };
  if (entry.type === COMMAND) {
    return {
      ...base,
      create: inputs.create as string,
      update: inputs.update as string | undefined,
      stdin: inputs.stdin as string | undefined,
    };
  }
  // Assets keep their promises in the raw inputs (reveal copies them into plain objects).
  const source = (entry.inputs as { source: { text?: Promise<string>; path?: Promise<string> } }).source;
  const text = await source.text;
  const file = await source.path;
  if (text === undefined && (file === undefined || fs.statSync(file).isDirectory())) {
    throw new Error(`${entry.name}: only StringAsset and FileAsset sources are run by this harness`);
  }
  return { ...base, remotePath: inputs.remotePath as string, content: text !== undefined ? Buffer.from(text) : fs.readFileSync(file!) };
}

export interface StepResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Where the operator's side of SSH runs (the rehearsal's internet) and keeps its key files. */
export interface Operator {
  readonly dir: string;
  wrap(argv: readonly string[]): string[];
}

/** The OpenSSH client's options for a connection: its key, its pinned host key, one dial. */
function sshOptions(operator: Operator, connection: Connection): string[] {
  const key = path.join(operator.dir, "id_operator");
  fs.writeFileSync(key, connection.privateKey.endsWith("\n") ? connection.privateKey : `${connection.privateKey}\n`, { mode: 0o600 });
  const knownHosts = path.join(operator.dir, "known_hosts");
  const hostPattern = connection.port === 22 ? connection.host : `[${connection.host}]:${connection.port}`;
  fs.writeFileSync(knownHosts, `${hostPattern} ${connection.hostKey}\n`);
  return [
    ...["-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"],
    ...["-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR"],
    ...["-o", `ConnectTimeout=${connection.perDialTimeout ?? 15}`],
  ];
}

/** Runs one step over SSH as the command provider would, and reports what it printed. */
export function runStep(operator: Operator, step: SshStep): Promise<StepResult> {
  const { connection } = step;
  const options = sshOptions(operator, connection);
  let argv: string[];
  let input: Buffer | string | undefined;
  if (step.type === COMMAND) {
    argv = ["ssh", ...options, "-p", String(connection.port), `${connection.user}@${connection.host}`, "--", step.create!];
    input = step.stdin;
  } else {
    const local = path.join(operator.dir, `${step.name}.upload`);
    fs.writeFileSync(local, step.content!, { mode: 0o644 });
    argv = ["scp", ...options, "-q", "-P", String(connection.port), local, `${connection.user}@${connection.host}:${step.remotePath}`];
  }
  const [command, ...args] = operator.wrap(argv);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({
        status: code ?? (signal === null ? -1 : 128),
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
        seconds: (Date.now() - started) / 1000,
      }),
    );
    child.stdin.end(input);
  });
}

/** Runs every step in order, stopping at the first failure, as `pulumi up` does for a chain. */
export async function runSteps(operator: Operator, steps: readonly SshStep[]): Promise<Map<string, StepResult>> {
  const results = new Map<string, StepResult>();
  for (const step of steps) {
    const result = await runStep(operator, step);
    results.set(step.name, result);
    if (result.status !== 0) break;
  }
  return results;
}

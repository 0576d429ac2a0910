/**
 * Long-running processes of the end-to-end rungs (an API server, a k0s node, a server in a network
 * namespace) and the guarantee that they end with the test run, however it ends: a normal stop,
 * a failed test, SIGINT or SIGTERM (the registered cleanups run), or the runner being killed outright
 * (every daemon is started with a parent-death signal, so the kernel kills it).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  /** Whether it has exited. */
  readonly dead: () => boolean;
  /** SIGTERM to its process group, SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to its process group at once, for cleanups that cannot wait (a termination signal). */
  kill(): void;
}

/**
 * Starts `command` in its own process group, logging to `<logDir>/<name>.log`. `setpriv --pdeathsig`
 * makes the kernel SIGKILL it should this process die without running its cleanups.
 */
export function startDaemon(
  name: string,
  command: string,
  args: readonly string[],
  options: { logDir: string; cwd?: string; env?: NodeJS.ProcessEnv },
): Daemon {
  const logPath = path.join(options.logDir, `${name}.log`);
  const fd = fs.openSync(logPath, "a");
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", command, ...args], {
    cwd: options.cwd ?? options.logDir,
    env: options.env ?? process.env,
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  fs.closeSync(fd);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (error) => {
      fs.appendFileSync(logPath, `\nspawn failed: ${error.message}\n`);
      resolve();
    });
  });
  const dead = () => child.exitCode !== null || child.signalCode !== null;
  const signal = (sig: NodeJS.Signals) => {
    if (child.pid === undefined || dead()) return;
    try {
      process.kill(-child.pid, sig); // negative pid: the whole process group
    } catch {
      // Already gone.
    }
  };
  return {
    name,
    child,
    logPath,
    exited,
    dead,
    async stop(graceMs = 5_000) {
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      signal("SIGKILL");
    },
    kill: () => signal("SIGKILL"),
  };
}

/**
 * A teardown that runs once however often it is asked for (a test's afterAll, a failed start and a
 * termination signal may all ask), every caller awaiting the same run.
 */
export function once(teardown: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= teardown());
}

/** The last lines of a log file, for failure messages. */
export function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** A cleanup: `async` for a normal stop, `sync` for the last moment of a process that is exiting. */
export interface Cleanup {
  async(): Promise<void>;
  sync(): void;
}

const cleanups = new Set<Cleanup>();
let handlersInstalled = false;

/**
 * Registers a cleanup to run on SIGINT, SIGTERM and process exit, until it is deregistered by the
 * returned function (call it once the normal stop has run).
 */
export function onTermination(cleanup: Cleanup): () => void {
  if (!handlersInstalled) {
    handlersInstalled = true;
    // 'exit' allows only synchronous work.
    process.on("exit", () => {
      for (const entry of cleanups) entry.sync();
    });
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        void Promise.allSettled([...cleanups].map((entry) => entry.async())).finally(() => {
          // A listener suppresses the default exit, so exit as the signal would have.
          process.exit(128 + os.constants.signals[sig]);
        });
      });
    }
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Runs a command to completion and returns its stdout; throws with its output when it fails. */
export function run(
  command: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): string {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, ...options });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/**
 * `run`, without blocking this process: for a client of a server this process itself serves (the
 * node's GitOps server), which a blocked event loop could never answer. Resolves with the exit
 * status and output rather than throwing.
 */
export function runAsync(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

/** Thrown by a waitFor check to stop waiting at once (say, the process it waits on has died). */
export class StopWaiting extends Error {}

/**
 * Polls until `check` returns a value, or fails after `timeoutMs` naming what it waited for. Errors
 * thrown by `check` count as "not yet", except StopWaiting.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof StopWaiting) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Among `pid`'s descendants, the one that is PID 1 of its own PID namespace: the init of the node
 * or machine that `pid` started (through unshare --fork or systemd-nspawn), once it runs.
 */
export function namespaceInitOf(pid: number): number | undefined {
  const read = (file: string): string => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch {
      return ""; // the process has already gone
    }
  };
  const descendants = (parent: number): number[] =>
    read(`/proc/${parent}/task/${parent}/children`)
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .flatMap((child) => [child, ...descendants(child)]);
  return descendants(pid).find((candidate) => /^NSpid:.*\s1$/m.test(read(`/proc/${candidate}/status`)));
}

/**
 * A TCP port nothing listens on at `host` right now: `preferred` when it is free (a port a person
 * types, such as the demo's), else the kernel's pick.
 */
export async function freePort(host = "127.0.0.1", preferred = 0): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = net.createServer();
      server.once("error", () => resolve(undefined));
      server.listen(port, host, () => {
        const { port: bound } = server.address() as net.AddressInfo;
        server.close(() => resolve(bound));
      });
    });
  const port = (preferred === 0 ? undefined : await tryPort(preferred)) ?? (await tryPort(0));
  if (port === undefined) throw new Error(`no free TCP port on ${host}`);
  return port;
}

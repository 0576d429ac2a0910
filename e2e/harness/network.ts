/**
 * Network namespaces a rung creates for its own test networks (a cafe's LAN, the internet a droplet
 * lives on): each is held by a daemon, so it disappears with the daemon, whatever ends the run.
 */
import * as fs from "node:fs";
import { run, startDaemon, waitFor, type Daemon } from "./processes";

export interface NetworkNamespace {
  readonly daemon: Daemon;
  /** The PID holding the namespace, for nsenter and `ip link ... netns <pid>`. */
  readonly pid: number;
  /** Runs a command inside the namespace and returns its stdout. */
  run(command: string, ...args: string[]): string;
  /** The command line that runs `argv` inside the namespace. */
  wrap(argv: readonly string[]): string[];
}

export async function startNetworkNamespace(name: string, logDir: string): Promise<NetworkNamespace> {
  const daemon = startDaemon(name, "unshare", ["--net", "--", "sleep", "infinity"], { logDir });
  const pid = daemon.child.pid!;
  // Until unshare has run, the process is still in this network namespace.
  const ours = fs.readlinkSync("/proc/self/ns/net");
  await waitFor(`the ${name} network namespace`, () => (fs.readlinkSync(`/proc/${pid}/ns/net`) !== ours ? true : undefined), 10_000, 20);
  const wrap = (argv: readonly string[]) => ["nsenter", "-t", String(pid), "-n", "--", ...argv];
  const namespace: NetworkNamespace = {
    daemon,
    pid,
    wrap,
    run: (command, ...args) => {
      const [nsenter, ...rest] = wrap([command, ...args]);
      return run(nsenter, rest);
    },
  };
  namespace.run("ip", "link", "set", "lo", "up");
  return namespace;
}

/**
 * What a rung might leave behind on the machine: processes, mounts, network namespaces, cgroups and
 * iptables rules. A snapshot before the rung starts and one after it stops must agree.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";

export interface MachineState {
  /**
   * Live processes started after the snapshot, outside this test process's tree, that are ours: in
   * a namespace other than the machine's, or running something a rung runs.
   */
  readonly processes: string[];
  readonly mounts: string[];
  readonly networkNamespaces: string[];
  readonly cgroups: string[];
  readonly iptables: string[];
}

export interface Snapshot {
  /** When it was taken, in the kernel's process start-time clock ticks. */
  readonly ticks: number;
  readonly state: MachineState;
}

const pids = () => fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));
const read = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
};
/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
const startTicks = (pid: string) => Number(read(`/proc/${pid}/stat`).split(") ")[1]?.split(" ")[19] ?? 0);
const parentOf = (pid: string) => read(`/proc/${pid}/stat`).split(") ")[1]?.split(" ")[1] ?? "0";

function uptimeTicks(): number {
  return Math.floor(Number(read("/proc/uptime").split(" ")[0]) * 100);
}

/** This process, its ancestors and its descendants: the test runner itself, never a leftover. */
function ownTree(): Set<string> {
  const own = new Set<string>();
  for (let pid = String(process.pid); pid !== "0" && pid !== ""; pid = parentOf(pid)) own.add(pid);
  const all = pids();
  let grew = true;
  while (grew) {
    grew = false;
    for (const pid of all) {
      if (!own.has(pid) && own.has(parentOf(pid)) && parentOf(pid) !== "1") {
        own.add(pid);
        grew = true;
      }
    }
  }
  return own;
}

const link = (file: string) => {
  try {
    return fs.readlinkSync(file);
  } catch {
    return "";
  }
};
/** What the rungs run, by executable name or path. */
const OURS =
  /k0s-platform|\/(k0s|kubelet|kube-[a-z-]+|kine|etcd|containerd[a-z0-9-]*|runc|tini|socat|nsenter|unshare|setpriv|sshd|systemd-nspawn|pulumi[a-z-]*)$/;

function isOurs(pid: string): boolean {
  // The namespaces the test runs in are the machine's, as far as a rung is concerned.
  const elsewhere = ["net", "mnt"].some((ns) => link(`/proc/${pid}/ns/${ns}`) !== link(`/proc/self/ns/${ns}`));
  return elsewhere || OURS.test(link(`/proc/${pid}/exe`)) || read(`/proc/${pid}/cmdline`).includes("k0s-platform");
}

function state(since: number): MachineState {
  const own = ownTree();
  const processes = pids()
    .filter((pid) => !own.has(pid) && startTicks(pid) >= since && read(`/proc/${pid}/cmdline`) !== "" && isOurs(pid))
    .map((pid) => `${pid} ${read(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim()}`);
  const mounts = read("/proc/self/mountinfo")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ")[4])
    .sort();
  const networkNamespaces = [
    ...new Set(
      pids()
        .map((pid) => link(`/proc/${pid}/ns/net`))
        .filter(Boolean),
    ),
    ...(fs.existsSync("/run/netns") ? fs.readdirSync("/run/netns").map((name) => `/run/netns/${name}`) : []),
  ].sort();
  const cgroups = fs
    .readdirSync("/sys/fs/cgroup")
    .flatMap((controller) => {
      try {
        return fs
          .readdirSync(`/sys/fs/cgroup/${controller}`, { withFileTypes: true })
          .filter((entry) => entry.isDirectory())
          .map((entry) => `${controller}/${entry.name}`);
      } catch {
        return [];
      }
    })
    .sort();
  const iptables = ["iptables-nft-save", "iptables-legacy-save", "ip6tables-nft-save", "ip6tables-legacy-save"].flatMap((command) =>
    (spawnSync(command, { encoding: "utf8" }).stdout ?? "")
      .split("\n")
      // Comments carry timestamps, and counters change with any traffic.
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => `${command}: ${line.replace(/\[\d+:\d+\]/, "")}`),
  );
  return { processes, mounts, networkNamespaces, cgroups, iptables };
}

export function snapshot(): Snapshot {
  const ticks = uptimeTicks();
  return { ticks, state: state(ticks) };
}

/**
 * What is on the machine now that was not at `before` and that this run left, by kind; empty lists
 * mean nothing was left. Other runs on the machine (another rung, a toolchain build) go on while
 * this one stops, so what they hold right now is set aside: a process with a live ancestor that is
 * not itself a leftover (its runner, its shell) is theirs, since everything this run started has
 * stopped and would have been orphaned; so is a network namespace that only their processes hold,
 * and a cgroup or mount named after another run's directory (`k0s-platform-*`, not `runName`).
 */
export function leftoversSince(before: Snapshot, runName: string): MachineState {
  const now = state(before.ticks);
  const added = (key: keyof MachineState) => now[key].filter((entry) => key === "processes" || !before.state[key].includes(entry));
  const processes = added("processes");
  const leftoverPids = new Set(processes.map((entry) => entry.split(" ")[0]));
  const othersHold = (pid: string): boolean => {
    for (let parent = parentOf(pid); parent !== "1" && parent !== "0"; parent = parentOf(parent)) {
      if (!leftoverPids.has(parent)) return true;
    }
    return false;
  };
  const holders = (namespace: string) =>
    pids().filter((pid) => read(`/proc/${pid}/stat`) !== "" && link(`/proc/${pid}/ns/net`) === namespace);
  const anotherRuns = (name: string) => /k0s-platform-/.test(name) && !name.includes(runName);
  return {
    processes: processes.filter((entry) => !othersHold(entry.split(" ")[0])),
    mounts: added("mounts").filter((mount) => !anotherRuns(mount)),
    networkNamespaces: added("networkNamespaces").filter(
      (namespace) => holders(namespace).length === 0 || !holders(namespace).every(othersHold),
    ),
    cgroups: added("cgroups").filter((cgroup) => !anotherRuns(cgroup)),
    iptables: added("iptables"),
  };
}

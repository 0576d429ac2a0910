/**
 * Cgroups of a rung's own: created before its processes start, so that everything they spawn (a
 * kubelet's pods, a container's services) lands beneath them, and removed, with whatever is left
 * in them, when the rung stops.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Runs a command inside given cgroups: `in-cgroups.sh --cgroup <path>... -- command...`. */
export const IN_CGROUPS = path.join(__dirname, "in-cgroups.sh");

export interface Cgroup {
  readonly controller: string;
  /** Absolute path of the cgroup in this controller's hierarchy. */
  readonly path: string;
}

/** A cgroup named `name` in every cgroup hierarchy mounted on this machine (v1 and the unified one). */
export function cgroupsNamed(name: string): Cgroup[] {
  return fs
    .readdirSync("/sys/fs/cgroup")
    .filter((controller) => !["systemd", "unified"].includes(controller) && fs.existsSync(`/sys/fs/cgroup/${controller}/cgroup.procs`))
    .map((controller) => ({ controller, path: `/sys/fs/cgroup/${controller}/${name}` }))
    .concat([
      { controller: "name=systemd", path: `/sys/fs/cgroup/systemd/${name}` },
      { controller: "unified", path: `/sys/fs/cgroup/unified/${name}` },
    ]);
}

export function createCgroup(cgroup: Cgroup): void {
  fs.mkdirSync(cgroup.path);
  if (cgroup.controller === "cpuset") {
    // A new cpuset has no CPUs or memory nodes until given its parent's.
    for (const file of ["cpuset.cpus", "cpuset.mems"]) {
      fs.writeFileSync(path.join(cgroup.path, file), fs.readFileSync(path.join(path.dirname(cgroup.path), file)));
    }
  }
}

/** Kills whatever is left in the cgroups and removes them, deepest first. */
export function removeCgroups(cgroups: readonly Cgroup[]): void {
  for (const cgroup of cgroups) {
    if (!fs.existsSync(cgroup.path)) continue;
    const tree = [
      cgroup.path,
      ...fs.readdirSync(cgroup.path, { recursive: true, encoding: "utf8" }).map((entry) => path.join(cgroup.path, entry)),
    ]
      .filter((entry) => fs.existsSync(path.join(entry, "cgroup.procs")))
      .sort((a, b) => b.length - a.length);
    for (let attempt = 0; attempt < 50 && fs.existsSync(cgroup.path); attempt++) {
      for (const entry of tree) {
        for (const pid of fs.readFileSync(path.join(entry, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            // Already gone.
          }
        }
        try {
          fs.rmdirSync(entry);
        } catch {
          // Busy until its processes are reaped; retried below.
        }
      }
      if (fs.existsSync(cgroup.path)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

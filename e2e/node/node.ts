/**
 * A real single-node k0s (`k0s controller --single`) for the node rung, started from the kit that
 * e2e/toolchain/build.sh builds, with the project's own k0s/workstation.yaml.
 *
 * Isolation: the node runs in fresh mount, network, UTS, PID and cgroup namespaces, in cgroups of
 * its own, with overlays over the host directories it writes to (see boot.sh). Its only network
 * link is a veth to a second network namespace, the "LAN" (the cafe's network, or the internet the
 * Git and chart servers live on). Nothing is added to the machine's own network namespace, and
 * stop() (or the termination handlers, or the kernel's parent-death signal) removes everything.
 *
 * Tests reach the node's 127.0.0.1 through Unix sockets forwarded into its network namespace, and
 * run commands there (kubectl, the pulumi CLI) with nsenter, as a user on the workstation would.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { cgroupsNamed, createCgroup, IN_CGROUPS, removeCgroups } from "../harness/cgroups";
import { KubeClient } from "../harness/kubeClient";
import { startNetworkNamespace } from "../harness/network";
import { namespaceInitOf, onTermination, run, startDaemon, StopWaiting, tail, waitFor, type Daemon } from "../harness/processes";
import { TOOLCHAIN_BIN, TOOLCHAIN_IMAGES } from "../harness/toolchain";

const HERE = __dirname;
/** The node's address on its LAN link, and the LAN side's (its gateway and the test servers). */
export const NODE_ADDRESS = "10.213.0.2";
export const LAN_ADDRESS = "10.213.0.1";
const PREFIX = 24;
/** Where k0s keeps its state and the admin kubeconfig, exactly as on a workstation. */
export const DATA_DIR = "/var/lib/k0s";
export const ADMIN_KUBECONFIG = `${DATA_DIR}/pki/admin.conf`;

/**
 * The three workarounds this machine needs and a user's does not (../shared/PITFALLS.md), kept out
 * of k0s/workstation.yaml: the only failing preflight check is "cgroup v1 is not supported";
 * kubelet 1.35 refuses cgroup v1 unless its profile says otherwise (k0s-test.yaml); and
 * containerd-test.toml (this VM lacks CAP_SYS_RESOURCE).
 */
const MACHINE_WORKAROUNDS = {
  k0sArgs: ["--ignore-pre-flight-checks"],
  containerdDropIn: path.join(HERE, "containerd-test.toml"),
};

/** The workstation cluster's host-only address (k0s/workstation-network.sh, k0s/workstation.yaml). */
export const HOST_ONLY_ADDRESS = "10.255.255.254";
/** The kubelet flags the README's `k0s install controller` line gives. */
export const WORKSTATION_KUBELET_ARGS = [`--node-ip=${HOST_ONLY_ADDRESS}`];

/** What k0s finds in <data-dir>/bin (a noembedbins build runs these). */
const NODE_BINARIES = {
  kit: ["kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kine"],
  debian: [
    "/usr/bin/containerd",
    "/usr/bin/containerd-shim",
    "/usr/bin/containerd-shim-runc-v2",
    "/usr/sbin/runc",
    "/usr/sbin/xtables-legacy-multi",
    "/usr/sbin/xtables-nft-multi",
  ],
};

export interface NodeOptions {
  /** The k0s config users run. */
  readonly k0sConfigPath: string;
  /** Test-only k0s config merged over it (image names; see k0s-test.yaml). */
  readonly testConfigPath?: string;
}

export interface K0sNode {
  /** The node's work directory on the machine (logs, overlays, sockets). */
  readonly dir: string;
  /** The node's PID 1, as the machine sees it. */
  readonly pid: number;
  /** The PID holding the LAN network namespace. */
  readonly lanPid: number;
  readonly client: KubeClient;
  /** Runs a command on the node (its mounts, network and hostname), as a workstation user would. */
  exec(command: string, args: readonly string[], options?: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string }): string;
  /** The command line that runs `argv` on the node, in `cwd`. */
  onNode(argv: readonly string[], cwd?: string): string[];
  /** `k0s kubectl` on the node with the admin kubeconfig; `input` is its stdin (for `apply -f -`). */
  kubectl(args: readonly string[], options?: { input?: string }): string;
  /** Runs a command in the LAN network namespace. */
  execOnLan(command: string, args: readonly string[]): string;
  /** Forwards a Unix socket under `dir` to a TCP address in the node's network namespace. */
  forward(name: string, target: string): Promise<string>;
  /** k0s's log and the node's state, for a failing test. */
  diagnostics(): string;
  stop(): Promise<void>;
}

const CGROUP_PREFIX = "k0s-platform-node-";

export async function startNode(options: NodeOptions): Promise<K0sNode> {
  for (const binary of ["k0s", ...NODE_BINARIES.kit]) {
    if (!fs.existsSync(path.join(TOOLCHAIN_BIN, binary)))
      throw new Error(`${binary} is not in ${TOOLCHAIN_BIN}: run npm run toolchain -- node`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-node-"));
  const id = path.basename(dir).slice("k0s-platform-node-".length);
  const cgroups = cgroupsNamed(`${CGROUP_PREFIX}${id}`);
  const daemons: Daemon[] = [];

  const removeEverything = () => {
    for (const daemon of [...daemons].reverse()) killGroup(daemon);
    removeCgroups(cgroups);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const daemon of [...daemons].reverse()) await daemon.stop(daemon.name === "node" ? 15_000 : 2_000);
      removeEverything();
      deregister();
    })());
  const deregister = onTermination({ async: stop, sync: removeEverything });

  const k0sConfig = mergedConfig(options);
  try {
    prepareNodeFiles(dir, k0sConfig);
    const lan = await startNetworkNamespace("lan", dir);
    daemons.push(lan.daemon);
    // boot.sh mounts these v1 controllers itself, and the systemd and unified hierarchies besides.
    const v1Controllers = cgroups
      .map((cgroup) => cgroup.controller)
      .filter((controller) => !["name=systemd", "unified"].includes(controller));
    fs.writeFileSync(path.join(dir, "cgroup-controllers"), v1Controllers.join("\n") + "\n");
    for (const cgroup of cgroups) createCgroup(cgroup);
    // The cgroup namespace makes the node's cgroups the root it sees, so what the kubelet and
    // containerd create stays beneath them.
    const node = startDaemon(
      "node",
      "bash",
      [
        IN_CGROUPS,
        ...cgroups.flatMap((cgroup) => ["--cgroup", cgroup.path]),
        "--",
        ...[
          "unshare",
          "--cgroup",
          "--mount",
          "--net",
          "--uts",
          "--pid",
          "--fork",
          "--kill-child",
          "--mount-proc",
          "--propagation",
          "private",
          "--",
        ],
        path.join(HERE, "boot.sh"),
        dir,
        `${NODE_ADDRESS}/${PREFIX}`,
        LAN_ADDRESS,
        "--",
        path.join(TOOLCHAIN_BIN, "k0s"),
        "controller",
        "--single",
        `--config=${path.join(dir, "k0s.yaml")}`,
        `--data-dir=${DATA_DIR}`,
        ...MACHINE_WORKAROUNDS.k0sArgs,
        `--kubelet-extra-args=${WORKSTATION_KUBELET_ARGS.join(" ")}`,
      ],
      { logDir: dir },
    );
    daemons.push(node);
    // setpriv execs bash, which execs unshare; unshare's forked child is PID 1 of the new namespace.
    const pid = await waitFor(
      "the node's PID 1",
      () => (node.child.pid === undefined ? undefined : namespaceInitOf(node.child.pid)),
      10_000,
      50,
    );
    // One veth, one end in each namespace: the machine's own network namespace never sees it.
    run("ip", ["link", "add", "eth0", "netns", String(pid), "type", "veth", "peer", "lan0", "netns", String(lan.pid)]);
    lan.run("ip", "addr", "add", `${LAN_ADDRESS}/${PREFIX}`, "dev", "lan0");
    lan.run("ip", "link", "set", "lan0", "up");

    // cd once inside: a working directory opened before entering the mount namespace is unreachable.
    const onNode = (argv: readonly string[], cwd = "/") => [
      "nsenter",
      "-t",
      String(pid),
      "-m",
      "-n",
      "-u",
      "--",
      "sh",
      "-c",
      'cd "$0" && exec "$@"',
      cwd,
      ...argv,
    ];
    const exec: K0sNode["exec"] = (command, args, { cwd, ...execOptions } = {}) => {
      const [nsenter, ...rest] = onNode([command, ...args], cwd);
      return run(nsenter, rest, execOptions);
    };
    const forward = async (name: string, target: string) => {
      const socket = path.join(dir, `${name}.sock`);
      const daemon = startDaemon(
        `forward-${name}`,
        "nsenter",
        ["-t", String(pid), "-n", "--", "socat", `UNIX-LISTEN:${socket},fork,mode=600`, `TCP:${target}`],
        { logDir: dir },
      );
      daemons.push(daemon);
      await waitFor(`the ${name} socket`, () => (fs.existsSync(socket) ? socket : undefined), 10_000, 50);
      return socket;
    };

    const adminConf = path.join(`/proc/${pid}/root`, ADMIN_KUBECONFIG);
    const alive = () => {
      if (node.dead()) throw new StopWaiting("k0s exited");
    };
    await waitFor("k0s's admin kubeconfig", () => (alive(), fs.existsSync(adminConf) || undefined), 180_000);
    const client = await adminClient(fs.readFileSync(adminConf, "utf8"), (server) => forward("api", server.host));
    await waitFor(
      "the API server's /readyz",
      async () => (alive(), (await client.request("GET", "/readyz")).status === 200 || undefined),
      120_000,
    );

    return {
      dir,
      pid,
      lanPid: lan.pid,
      client,
      exec,
      onNode,
      kubectl: (args, kubectlOptions) =>
        exec(path.join(TOOLCHAIN_BIN, "k0s"), ["kubectl", `--kubeconfig=${ADMIN_KUBECONFIG}`, ...args], kubectlOptions),
      execOnLan: (command, args) => lan.run(command, ...args),
      forward,
      diagnostics: () => `--- k0s (last lines) ---\n${tail(node.logPath, 80)}`,
      stop,
    };
  } catch (error) {
    const logs = daemons.map((daemon) => `--- ${daemon.name} ---\n${tail(daemon.logPath)}`).join("\n");
    await stop();
    throw new Error(`the k0s node failed to start: ${(error as Error).message}\n${logs}`);
  }
}

/**
 * workstation.yaml with the test drop-in merged over it: maps merge, lists of named items (such as
 * workerProfiles) merge by name, anything else is replaced.
 */
function mergedConfig(options: NodeOptions): Record<string, unknown> {
  const base = parse(fs.readFileSync(options.k0sConfigPath, "utf8")) as Record<string, unknown>;
  if (options.testConfigPath === undefined) return base;
  return merge(base, parse(fs.readFileSync(options.testConfigPath, "utf8"))) as Record<string, unknown>;
}

function merge(base: unknown, over: unknown): unknown {
  if (isObject(base) && isObject(over)) {
    const keys = [...new Set([...Object.keys(base), ...Object.keys(over)])];
    return Object.fromEntries(keys.map((key) => [key, key in over ? merge(base[key], over[key]) : base[key]]));
  }
  const named = (list: unknown): list is { name: string }[] =>
    Array.isArray(list) && list.every((item) => isObject(item) && typeof item.name === "string");
  if (named(base) && named(over)) {
    const overByName = new Map(over.map((item) => [item.name, item]));
    const merged = base.map((item) => (overByName.has(item.name) ? merge(item, overByName.get(item.name)) : item));
    return [...merged, ...over.filter((item) => !base.some((existing) => existing.name === item.name))];
  }
  return over;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Fills what the node mounts before it starts: the k0s config, the containerd drop-in (in /etc's
 * overlay), and k0s's data dir (boot.sh binds <dir>/data at /var/lib/k0s) with its bin dir and the
 * kit's images (hard links where the cache and the work dir share a filesystem; k0s imports
 * whatever tars its images dir holds).
 */
function prepareNodeFiles(dir: string, k0sConfig: Record<string, unknown>): void {
  fs.writeFileSync(path.join(dir, "k0s.yaml"), stringify(k0sConfig));
  const upper = (hostDir: string) => path.join(dir, "overlay", `${hostDir.split("/")[1]}.upper`, ...hostDir.split("/").slice(2));
  const dropIns = upper("/etc/k0s/containerd.d");
  fs.mkdirSync(dropIns, { recursive: true });
  fs.copyFileSync(MACHINE_WORKAROUNDS.containerdDropIn, path.join(dropIns, path.basename(MACHINE_WORKAROUNDS.containerdDropIn)));
  const bin = path.join(dir, "data", "bin");
  fs.mkdirSync(bin, { recursive: true });
  for (const binary of NODE_BINARIES.kit) linkOrCopy(path.join(TOOLCHAIN_BIN, binary), path.join(bin, binary));
  for (const binary of NODE_BINARIES.debian) linkOrCopy(binary, path.join(bin, path.basename(binary)));
  const images = path.join(dir, "data", "images");
  fs.mkdirSync(images, { recursive: true });
  for (const image of fs.readdirSync(TOOLCHAIN_IMAGES).filter((file) => file.endsWith(".tar"))) {
    linkOrCopy(path.join(TOOLCHAIN_IMAGES, image), path.join(images, image));
  }
}

function linkOrCopy(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
    fs.chmodSync(to, fs.statSync(from).mode);
  }
}

async function adminClient(kubeconfig: string, forwardTo: (server: URL) => Promise<string>): Promise<KubeClient> {
  const config = parse(kubeconfig) as {
    clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
    users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
  };
  const decode = (data: string) => Buffer.from(data, "base64").toString("utf8");
  const cluster = config.clusters[0].cluster;
  const user = config.users[0].user;
  return new KubeClient({
    server: cluster.server,
    socketPath: await forwardTo(new URL(cluster.server)),
    tls: {
      ca: decode(cluster["certificate-authority-data"]),
      cert: decode(user["client-certificate-data"]),
      key: decode(user["client-key-data"]),
    },
  });
}

function killGroup(daemon: Daemon): void {
  if (daemon.child.pid === undefined || daemon.dead()) return;
  try {
    process.kill(-daemon.child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

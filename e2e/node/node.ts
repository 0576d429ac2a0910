/**
 * The node rung's node: a test cluster of k0s's components (not k0s, which the Go module proxy
 * refuses), started from the kit e2e/toolchain/build.sh builds and configured from the project's
 * own k0s/workstation.yaml by one mapping (k0sComponents.ts): kine, kube-apiserver,
 * kube-controller-manager, kube-scheduler, containerd and the kubelet as processes, and the system
 * workloads k0s applies (kube-proxy, kube-router with its CNI, CoreDNS, metrics-server) as pods.
 *
 * Isolation: the node runs in fresh mount, network, UTS, PID and cgroup namespaces, in cgroups of
 * its own, with overlays over the host directories it writes to (see boot.sh). Its only network
 * link is a veth to a second network namespace, the "LAN" (the cafe's network, or the internet the
 * Git and chart servers live on). Nothing is added to the machine's own network namespace, and
 * stop() (or the termination handlers, or the kernel's parent-death signal) removes everything.
 *
 * Tests reach the node's addresses through Unix sockets forwarded into its network namespace, and
 * run commands there (kubectl, the pulumi CLI) with nsenter, as a user on the workstation would.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { cgroupsNamed, createCgroup, IN_CGROUPS, removeCgroups } from "../harness/cgroups";
import { clientFromKubeconfig, type KubeClient } from "../harness/kubeClient";
import { startNetworkNamespace } from "../harness/network";
import { namespaceInitOf, once, onTermination, run, startDaemon, StopWaiting, tail, waitFor, type Daemon } from "../harness/processes";
import { TOOLCHAIN_BIN, TOOLCHAIN_IMAGES } from "../harness/toolchain";
import { effective, paths } from "./k0sComponents";
import { ADMIN_KUBECONFIG, LAYOUT, mergedConfig, NODE_NAME, prepareNodeFiles, type NodeOptions } from "./nodeFiles";
import { systemManifests } from "./systemManifests";

export { ADMIN_KUBECONFIG, DATA_DIR, HOST_ONLY_ADDRESS, NODE_NAME, WORKSTATION_KUBELET_ARGS, type NodeOptions } from "./nodeFiles";

const HERE = __dirname;
/** The node's address on its LAN link, and the LAN side's (its gateway and the test servers). */
export const NODE_ADDRESS = "10.213.0.2";
export const LAN_ADDRESS = "10.213.0.1";
const PREFIX = 24;
/** Everything the node runs from the kit; runc and the shim are found on containerd's PATH. */
const KIT = [
  "kine",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubelet",
  "kubectl",
  "containerd",
  "containerd-shim-runc-v2",
  "ctr",
  "runc",
];

export interface TestNode {
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
  /** The kit's kubectl on the node with the admin kubeconfig; `input` is its stdin (for `apply -f -`). */
  kubectl(args: readonly string[], options?: { input?: string }): string;
  /** Runs a command in the LAN network namespace. */
  execOnLan(command: string, args: readonly string[]): string;
  /** Kills a pod's first container with SIGKILL, as the OOM killer or a crash would; the kubelet restarts it. */
  killContainer(namespace: string, pod: string): void;
  /** Forwards a Unix socket under `dir` to a TCP address in the node's network namespace. */
  forward(name: string, target: string): Promise<string>;
  /** The components' logs and the node's state, for a failing test. */
  diagnostics(): string;
  stop(): Promise<void>;
}

/** The kit's kubectl on the node, with the admin kubeconfig. */
export const KUBECTL = [path.join(TOOLCHAIN_BIN, "kubectl"), `--kubeconfig=${ADMIN_KUBECONFIG}`];
const CGROUP_PREFIX = "k0s-platform-node-";

export async function startNode(options: NodeOptions): Promise<TestNode> {
  for (const binary of KIT) {
    if (!fs.existsSync(path.join(TOOLCHAIN_BIN, binary)))
      throw new Error(`${binary} is not in ${TOOLCHAIN_BIN}: run npm run toolchain -- node`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-node-"));
  const id = path.basename(dir).slice("k0s-platform-node-".length);
  const cgroups = cgroupsNamed(`${CGROUP_PREFIX}${id}`);
  const daemons: Daemon[] = [];

  const removeEverything = () => {
    for (const daemon of [...daemons].reverse()) daemon.kill();
    removeCgroups(cgroups);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const stop = once(async () => {
    for (const daemon of [...daemons].reverse()) await daemon.stop(daemon.name === "node" ? 15_000 : 2_000);
    removeEverything();
    deregister();
  });
  const deregister = onTermination({ async: stop, sync: removeEverything });

  const config = mergedConfig(options);
  const settings = effective(config, LAYOUT);
  /** The components' logs and every container's (the kubelet's /var/log/pods, in the /var overlay). */
  const logs = () => {
    const files = (root: string): string[] =>
      fs.existsSync(root)
        ? fs
            .readdirSync(root, { withFileTypes: true })
            .flatMap((entry) => (entry.isDirectory() ? files(path.join(root, entry.name)) : [path.join(root, entry.name)]))
        : [];
    return [...files(path.join(dir, "logs")), ...files(path.join(dir, "overlay", "var.upper", "log", "pods"))]
      .map((file) => `--- ${path.relative(dir, file)} (last lines) ---\n${tail(file, 12)}`)
      .join("\n");
  };
  try {
    prepareNodeFiles(dir, config);
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
        "bash",
        path.join(HERE, "components.sh"),
        dir,
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
    const exec: TestNode["exec"] = (command, args, { cwd, ...execOptions } = {}) => {
      const [nsenter, ...rest] = onNode([command, ...args], cwd);
      return run(nsenter, rest, execOptions);
    };
    const forward = async (name: string, target: string) => {
      const socket = path.join(dir, `${name}.sock`);
      const daemon = startDaemon(
        "forward-" + name,
        "nsenter",
        ["-t", String(pid), "-n", "--", "socat", `UNIX-LISTEN:${socket},fork,mode=600`, `TCP:${target}`],
        {
          logDir: dir,
        },
      );
      daemons.push(daemon);
      await waitFor(`the ${name} socket`, () => (fs.existsSync(socket) ? socket : undefined), 10_000, 50);
      return socket;
    };
    const alive = () => {
      if (node.dead()) throw new StopWaiting("the node's components stopped");
    };
    const kubectl: TestNode["kubectl"] = (args, kubectlOptions) => exec(KUBECTL[0], [...KUBECTL.slice(1), ...args], kubectlOptions);

    // The kit's images, imported into containerd before the kubelet starts (nothing can be pulled here).
    await waitFor(
      "containerd's socket",
      () => (alive(), fs.existsSync(`/proc/${pid}/root${paths(LAYOUT).containerdSocket}`) || undefined),
      60_000,
      200,
    );
    for (const image of fs.readdirSync(TOOLCHAIN_IMAGES).filter((file) => file.endsWith(".tar"))) {
      exec(path.join(TOOLCHAIN_BIN, "ctr"), [
        "--address",
        paths(LAYOUT).containerdSocket,
        "-n",
        "k8s.io",
        "images",
        "import",
        path.join(TOOLCHAIN_IMAGES, image),
      ]);
    }
    fs.writeFileSync(path.join(dir, "images-imported"), "");

    const adminConf = fs.readFileSync(path.join(dir, "data", "pki", "admin.conf"), "utf8");
    const { client } = clientFromKubeconfig(adminConf, { socketPath: await forward("api", `${settings.apiAddress}:${settings.apiPort}`) });
    await waitFor(
      "the API server's /readyz",
      async () => (alive(), (await client.request("GET", "/readyz")).status === 200 || undefined),
      120_000,
    );
    kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], {
      input: stringify({ apiVersion: "v1", kind: "List", items: systemManifests(config, LAYOUT) }),
    });
    await waitFor(
      "the node Ready and CoreDNS available (the pod network works)",
      async () => {
        alive();
        const nodeObject = await client.request("GET", `/api/v1/nodes/${NODE_NAME}`);
        const ready =
          nodeObject.status === 200 &&
          (nodeObject.body.status?.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True");
        const dns = await client.request("GET", "/apis/apps/v1/namespaces/kube-system/deployments/coredns");
        return (ready && dns.status === 200 && (dns.body.status?.availableReplicas ?? 0) >= 1) || undefined;
      },
      300_000,
      1_000,
    );

    return {
      dir,
      pid,
      lanPid: lan.pid,
      client,
      exec,
      onNode,
      kubectl,
      execOnLan: (command, args) => lan.run(command, ...args),
      killContainer(namespace, pod) {
        const containerId = kubectl(["get", "pod", pod, "-n", namespace, "-o", "jsonpath={.status.containerStatuses[0].containerID}"]);
        exec(path.join(TOOLCHAIN_BIN, "ctr"), [
          ...["--address", paths(LAYOUT).containerdSocket, "-n", "k8s.io"],
          ...["tasks", "kill", "--signal", "SIGKILL", containerId.replace(/^containerd:\/\//, "")],
        ]);
      },
      forward,
      diagnostics: () => `--- the node (last lines) ---\n${tail(node.logPath, 30)}\n${logs()}`,
      stop,
    };
  } catch (error) {
    const daemonLogs = daemons.map((daemon) => `--- ${daemon.name} ---\n${tail(daemon.logPath)}`).join("\n");
    const componentLogs = logs();
    await stop();
    throw new Error(`the test cluster of k0s's components failed to start: ${(error as Error).message}\n${daemonLogs}\n${componentLogs}`);
  }
}

/**
 * What the node rung's node holds before it starts (boot.sh binds <dir>/data at the data dir and
 * overlays /etc): the merged k0s config, the PKI and kubeconfigs, the kubelet's and containerd's
 * configuration, and each component's command line for components.sh, all from k0sComponents.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { TOOLCHAIN_BIN } from "../harness/toolchain";
import {
  controlPlaneArgs,
  effective,
  kubeletArgs,
  kubeletConfiguration,
  paths,
  type ClusterConfig,
  type NodeLayout,
} from "./k0sComponents";
import { kubeconfigFor, KUBECONFIG_USERS, mintPki } from "./pki";
import { SYSTEM_IMAGES } from "./systemManifests";

/** Where the node keeps its state and the admin kubeconfig: k0s's paths, as on a workstation. */
export const DATA_DIR = "/var/lib/k0s";
export const ADMIN_KUBECONFIG = `${DATA_DIR}/pki/admin.conf`;

/** The workstation cluster's host-only address (k0s/workstation-network.sh, k0s/workstation.yaml). */
export const HOST_ONLY_ADDRESS = "10.255.255.254";
/** The kubelet flags the README's `k0s install controller` line gives. */
export const WORKSTATION_KUBELET_ARGS = [`--node-ip=${HOST_ONLY_ADDRESS}`];
/** The node's hostname, and so its Node's name. */
export const NODE_NAME = "workstation";

export const LAYOUT: NodeLayout = {
  nodeName: NODE_NAME,
  dataDir: DATA_DIR,
  runDir: "/run/k0s",
  kubeletExtraArgs: WORKSTATION_KUBELET_ARGS,
};
/** containerd's test-only drop-in for this machine (see the file). */
const CONTAINERD_DROP_IN = path.join(__dirname, "containerd-test.toml");

export interface NodeOptions {
  /** The k0s config users run. */
  readonly k0sConfigPath: string;
  /** Test-only k0s config merged over it (see k0s-test.yaml). */
  readonly testConfigPath?: string;
}

export function mergedConfig(options: NodeOptions): ClusterConfig {
  const base = parse(fs.readFileSync(options.k0sConfigPath, "utf8"));
  if (options.testConfigPath === undefined) return base as ClusterConfig;
  return mergeConfigs(base, parse(fs.readFileSync(options.testConfigPath, "utf8"))) as ClusterConfig;
}

/**
 * Fills what the node mounts before it starts (boot.sh binds <dir>/data at the data dir and overlays
 * /etc): the PKI and kubeconfigs, the kubelet's configuration, containerd's configuration with the
 * test drop-in, and each component's command line for components.sh.
 */
export function prepareNodeFiles(dir: string, config: ClusterConfig): void {
  const data = path.join(dir, "data");
  const onHost = (nodePath: string) => path.join(data, path.relative(DATA_DIR, nodePath));
  const settings = effective(config, LAYOUT);
  const p = paths(LAYOUT);
  mintPki(onHost(p.pki), settings, NODE_NAME, settings.clusterDomain);
  const server = `https://${settings.apiAddress}:${settings.apiPort}`;
  for (const user of [...Object.keys(KUBECONFIG_USERS), "kubelet"]) {
    fs.writeFileSync(onHost(p.kubeconfig(user)), kubeconfigFor(onHost(p.pki), user, server), { mode: 0o600 });
  }
  fs.writeFileSync(onHost(p.kubeletConfig), stringify(kubeletConfiguration(config, LAYOUT)));
  fs.mkdirSync(path.join(data, "db"), { recursive: true });

  const etc = (nodePath: string) => path.join(dir, "overlay", "etc.upper", path.relative("/etc", nodePath));
  fs.mkdirSync(etc("/etc/k0s/containerd.d"), { recursive: true });
  fs.writeFileSync(etc("/etc/k0s/containerd.toml"), containerdConfig(LAYOUT, SYSTEM_IMAGES.pause));
  fs.copyFileSync(CONTAINERD_DROP_IN, etc(`/etc/k0s/containerd.d/${path.basename(CONTAINERD_DROP_IN)}`));

  const bin = (name: string) => path.join(TOOLCHAIN_BIN, name);
  const control = controlPlaneArgs(config, LAYOUT);
  const components: [string, string[], string?][] = [
    ["kine", [bin("kine"), ...control.kine], "/run/k0s/kine/kine.sock*"],
    ["kube-apiserver", [bin("kube-apiserver"), ...control["kube-apiserver"]]],
    ["kube-controller-manager", [bin("kube-controller-manager"), ...control["kube-controller-manager"]]],
    ["kube-scheduler", [bin("kube-scheduler"), ...control["kube-scheduler"]]],
    // containerd finds its shim and runc on its PATH.
    [
      "containerd",
      ["env", `PATH=${TOOLCHAIN_BIN}:/usr/sbin:/usr/bin:/sbin:/bin`, bin("containerd"), "--config=/etc/k0s/containerd.toml"],
      path.join(dir, "images-imported"),
    ],
    ["kubelet", ["env", `PATH=/usr/sbin:/usr/bin:/sbin:/bin`, bin("kubelet"), ...kubeletArgs(LAYOUT)]],
  ];
  fs.mkdirSync(path.join(dir, "components"));
  components.forEach(([name, argv, waitFor], index) => {
    const file = path.join(dir, "components", `${index}-${name}`);
    fs.writeFileSync(`${file}.argv`, argv.join("\n") + "\n");
    if (waitFor !== undefined) fs.writeFileSync(`${file}.wait`, waitFor);
  });
}

/**
 * A config with a drop-in merged over it (how the test drop-in joins workstation.yaml): maps merge,
 * lists of named items (such as workerProfiles) merge by name, anything else is replaced.
 */
export function mergeConfigs(base: unknown, over: unknown): unknown {
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === "object" && value !== null && !Array.isArray(value);
  if (isObject(base) && isObject(over)) {
    const keys = [...new Set([...Object.keys(base), ...Object.keys(over)])];
    return Object.fromEntries(keys.map((key) => [key, key in over ? mergeConfigs(base[key], over[key]) : base[key]]));
  }
  const named = (list: unknown): list is { name: string }[] =>
    Array.isArray(list) && list.every((item) => isObject(item) && typeof item.name === "string");
  if (named(base) && named(over)) {
    const overByName = new Map(over.map((item) => [item.name, item]));
    const merged = base.map((item) => (overByName.has(item.name) ? mergeConfigs(item, overByName.get(item.name)) : item));
    return [...merged, ...over.filter((item) => !base.some((existing) => existing.name === item.name))];
  }
  return over;
}

/** containerd's configuration (version 3), as k0s lays it out: its socket under the run dir, drop-ins imported. */
export function containerdConfig(node: NodeLayout, sandboxImage: string): string {
  const p = paths(node);
  return [
    "version = 3",
    `root = "${node.dataDir}/containerd"`,
    `state = "${node.runDir}/containerd"`,
    `imports = ["/etc/k0s/containerd.d/*.toml"]`,
    "",
    "[grpc]",
    `  address = "${p.containerdSocket}"`,
    "",
    "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
    `  sandbox = "${sandboxImage}"`,
    "",
    "[plugins.'io.containerd.cri.v1.runtime'.cni]",
    `  bin_dirs = ["/opt/cni/bin"]`,
    `  conf_dir = "/etc/cni/net.d"`,
    "",
  ].join("\n");
}

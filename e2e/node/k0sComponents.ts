/**
 * One mapping, written once: a k0s ClusterConfig (k0s/workstation.yaml with the test drop-in merged
 * over it) to the command lines and configuration files of k0s's components, for the node rung's
 * test cluster of k0s's components (k0s itself is refused by the Go module proxy, so this is not k0s).
 *
 * It holds k0s's documented single-node defaults (the ClusterConfig reference and schema in
 * ../shared/upstream-data/k0s-clusterconfig-v1.36.3: pod CIDR 10.244.0.0/16, service CIDR
 * 10.96.0.0/12, cluster domain cluster.local, kube-router as the CNI with its metrics on 8080,
 * kube-proxy in iptables mode, kine with SQLite under <data-dir>/db) plus what a config sets:
 * the API address and port, onlyBindToAddress and SANs, kine's and kube-router's extra arguments,
 * kube-proxy's settings, and the default worker profile's kubelet values. Where k0s's docs say
 * nothing (authentication and authorization flags, certificate file names), the choices are
 * Kubernetes' usual ones, not k0s's. Everything here is pure:
 * node.ts writes the files and starts the processes, systemManifests.ts renders the pods.
 */

/** The part of k0s's ClusterConfig spec this mapping reads; anything else is ignored. */
export interface ClusterConfig {
  readonly spec?: {
    readonly api?: { address?: string; port?: number; onlyBindToAddress?: boolean; sans?: string[]; extraArgs?: Args };
    readonly storage?: { type?: string; kine?: { dataSource?: string; extraArgs?: Args } };
    readonly network?: {
      podCIDR?: string;
      serviceCIDR?: string;
      clusterDomain?: string;
      provider?: string;
      kuberouter?: { extraArgs?: Args; metricsPort?: number; hairpin?: string; autoMTU?: boolean };
      kubeProxy?: {
        mode?: string;
        metricsBindAddress?: string;
        healthzBindAddress?: string;
        nodePortAddresses?: string[];
        iptables?: Record<string, unknown>;
        extraArgs?: Args;
      };
    };
    readonly controllerManager?: { extraArgs?: Args };
    readonly scheduler?: { extraArgs?: Args };
    readonly workerProfiles?: { name: string; values?: Record<string, unknown> }[];
  };
}
type Args = Record<string, string>;

/** Where the node keeps things, and what `k0s install controller` was given besides the config. */
export interface NodeLayout {
  /** The node's hostname, which is its Node name. */
  readonly nodeName: string;
  /** k0s's data dir (kine's database, the kubelet's root, containerd's root, the PKI). */
  readonly dataDir: string;
  /** k0s's run dir (sockets). */
  readonly runDir: string;
  /** `--kubelet-extra-args` as the README's install line gives them (e.g. --node-ip). */
  readonly kubeletExtraArgs: readonly string[];
}

/** k0s's defaults for what this mapping reads (ClusterConfig schema defaults and k0s's docs). */
export const K0S_DEFAULTS = {
  apiPort: 6443,
  podCIDR: "10.244.0.0/16",
  serviceCIDR: "10.96.0.0/12",
  clusterDomain: "cluster.local",
  provider: "kuberouter",
  kubeRouterMetricsPort: 8080,
  kubeProxyMode: "iptables",
} as const;

/** The effective settings: the config's values over k0s's defaults. */
export interface Effective {
  readonly apiAddress: string;
  readonly apiPort: number;
  readonly onlyBindToAddress: boolean;
  readonly sans: readonly string[];
  readonly podCIDR: string;
  readonly serviceCIDR: string;
  readonly clusterDomain: string;
  /** The kubernetes Service's address: the service CIDR's first address. */
  readonly apiServiceIP: string;
  /** CoreDNS's Service address: the service CIDR's tenth address, as k0s and kubeadm choose it. */
  readonly dnsServiceIP: string;
  readonly nodeIP: string;
}

export function effective(config: ClusterConfig, node: NodeLayout): Effective {
  const spec = config.spec ?? {};
  if ((spec.storage?.type ?? "kine") !== "kine") throw new Error("[storage.type] only kine is mapped (k0s --single's default)");
  if ((spec.network?.provider ?? K0S_DEFAULTS.provider) !== "kuberouter") throw new Error("[network.provider] only kuberouter is mapped");
  const nodeIP = flagValue(node.kubeletExtraArgs, "node-ip");
  const apiAddress = spec.api?.address ?? nodeIP;
  if (apiAddress === undefined) throw new Error("[api.address] is needed (k0s would pick the default route's address)");
  const serviceCIDR = spec.network?.serviceCIDR ?? K0S_DEFAULTS.serviceCIDR;
  return {
    apiAddress,
    apiPort: spec.api?.port ?? K0S_DEFAULTS.apiPort,
    onlyBindToAddress: spec.api?.onlyBindToAddress ?? false,
    sans: spec.api?.sans ?? [],
    podCIDR: spec.network?.podCIDR ?? K0S_DEFAULTS.podCIDR,
    serviceCIDR,
    clusterDomain: spec.network?.clusterDomain ?? K0S_DEFAULTS.clusterDomain,
    apiServiceIP: nthAddress(serviceCIDR, 1),
    dnsServiceIP: nthAddress(serviceCIDR, 10),
    nodeIP: nodeIP ?? apiAddress,
  };
}

/** The `n`th address of an IPv4 CIDR (0 is the network address). */
export function nthAddress(cidr: string, n: number): string {
  const [address, bits] = cidr.split("/");
  const octets = address.split(".").map(Number);
  if (octets.length !== 4 || octets.some((octet) => !(octet >= 0 && octet <= 255)) || !(Number(bits) >= 0 && Number(bits) <= 32))
    throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const base = octets.reduce((sum, octet) => sum * 256 + octet, 0);
  const value = base + n;
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function flagValue(args: readonly string[], name: string): string | undefined {
  const found = args.find((arg) => arg.startsWith(`--${name}=`));
  return found?.slice(`--${name}=`.length);
}

/** `--key=value` flags from defaults with `extraArgs` over them (k0s's extraArgs replace a default of the same key). */
export function flags(defaults: Args, extraArgs: Args = {}): string[] {
  return Object.entries({ ...defaults, ...extraArgs }).map(([key, value]) => `--${key}=${value}`);
}

/** The paths the components share on the node. */
export function paths(node: NodeLayout) {
  const pki = `${node.dataDir}/pki`;
  return {
    pki,
    kineSocket: `unix://${node.runDir}/kine/kine.sock:2379`,
    containerdSocket: `${node.runDir}/containerd.sock`,
    kubeletRoot: `${node.dataDir}/kubelet`,
    kubeletConfig: `${node.dataDir}/kubelet-config.yaml`,
    adminKubeconfig: `${pki}/admin.conf`,
    kubeconfig: (user: string) => `${pki}/${user}.conf`,
  };
}

/** The control plane's command lines (binary name, then its arguments), as k0s runs them on a single node. */
export function controlPlaneArgs(
  config: ClusterConfig,
  node: NodeLayout,
): Record<"kine" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler", string[]> {
  const spec = config.spec ?? {};
  const e = effective(config, node);
  const p = paths(node);
  return {
    kine: flags(
      {
        endpoint: spec.storage?.kine?.dataSource ?? `sqlite://${node.dataDir}/db/state.db?mode=rwc&_journal=WAL&cache=shared`,
        "listen-address": p.kineSocket,
        // k0s's default: every address (workstation.yaml moves it to loopback).
        "metrics-bind-address": ":2380",
      },
      spec.storage?.kine?.extraArgs,
    ),
    "kube-apiserver": flags(
      {
        "advertise-address": e.apiAddress,
        ...(e.onlyBindToAddress ? { "bind-address": e.apiAddress } : {}),
        "secure-port": String(e.apiPort),
        "etcd-servers": p.kineSocket,
        "service-cluster-ip-range": e.serviceCIDR,
        "allow-privileged": "true",
        "authorization-mode": "Node,RBAC",
        "enable-admission-plugins": "NodeRestriction",
        "client-ca-file": `${p.pki}/ca.crt`,
        "tls-cert-file": `${p.pki}/server.crt`,
        "tls-private-key-file": `${p.pki}/server.key`,
        "kubelet-client-certificate": `${p.pki}/apiserver-kubelet-client.crt`,
        "kubelet-client-key": `${p.pki}/apiserver-kubelet-client.key`,
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        "service-account-issuer": "https://kubernetes.default.svc",
        "service-account-key-file": `${p.pki}/sa.pub`,
        "service-account-signing-key-file": `${p.pki}/sa.key`,
        "requestheader-client-ca-file": `${p.pki}/front-proxy-ca.crt`,
        "requestheader-allowed-names": "front-proxy-client",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-username-headers": "X-Remote-User",
        "proxy-client-cert-file": `${p.pki}/front-proxy-client.crt`,
        "proxy-client-key-file": `${p.pki}/front-proxy-client.key`,
        "enable-aggregator-routing": "true",
        profiling: "false",
      },
      spec.api?.extraArgs,
    ),
    "kube-controller-manager": flags(
      {
        "bind-address": "127.0.0.1",
        kubeconfig: p.kubeconfig("controller-manager"),
        "authentication-kubeconfig": p.kubeconfig("controller-manager"),
        "authorization-kubeconfig": p.kubeconfig("controller-manager"),
        "allocate-node-cidrs": "true",
        "cluster-cidr": e.podCIDR,
        "service-cluster-ip-range": e.serviceCIDR,
        "node-cidr-mask-size": "24",
        "cluster-signing-cert-file": `${p.pki}/ca.crt`,
        "cluster-signing-key-file": `${p.pki}/ca.key`,
        "root-ca-file": `${p.pki}/ca.crt`,
        "service-account-private-key-file": `${p.pki}/sa.key`,
        "use-service-account-credentials": "true",
        controllers: "*,bootstrapsigner,tokencleaner",
        "leader-elect": "false",
        profiling: "false",
      },
      spec.controllerManager?.extraArgs,
    ),
    "kube-scheduler": flags(
      {
        "bind-address": "127.0.0.1",
        kubeconfig: p.kubeconfig("scheduler"),
        "authentication-kubeconfig": p.kubeconfig("scheduler"),
        "authorization-kubeconfig": p.kubeconfig("scheduler"),
        "leader-elect": "false",
        profiling: "false",
      },
      spec.scheduler?.extraArgs,
    ),
  };
}

/** The kubelet's KubeletConfiguration: k0s's defaults, then the `default` worker profile's values over them. */
export function kubeletConfiguration(config: ClusterConfig, node: NodeLayout): Record<string, unknown> {
  const e = effective(config, node);
  const p = paths(node);
  const profile = (config.spec?.workerProfiles ?? []).find((candidate) => candidate.name === "default")?.values ?? {};
  return deepMerge(
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      clusterDNS: [e.dnsServiceIP],
      clusterDomain: e.clusterDomain,
      containerRuntimeEndpoint: `unix://${p.containerdSocket}`,
      cgroupDriver: "cgroupfs",
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: `${p.pki}/ca.crt` } },
      authorization: { mode: "Webhook" },
      tlsCertFile: `${p.pki}/kubelet-server.crt`,
      tlsPrivateKeyFile: `${p.pki}/kubelet-server.key`,
      tlsMinVersion: "VersionTLS12",
      failSwapOn: false,
      rotateCertificates: false,
      serverTLSBootstrap: false,
      resolvConf: "/etc/resolv.conf",
      eventRecordQPS: 0,
    },
    profile,
  );
}

/** The kubelet's command line: its config file and kubeconfig, then `--kubelet-extra-args`. */
export function kubeletArgs(node: NodeLayout): string[] {
  const p = paths(node);
  return [
    `--config=${p.kubeletConfig}`,
    `--kubeconfig=${p.kubeconfig("kubelet")}`,
    `--root-dir=${p.kubeletRoot}`,
    `--hostname-override=${node.nodeName}`,
    // cAdvisor's own containerd client (container labels on /metrics/cadvisor), not the CRI endpoint.
    `--containerd=${p.containerdSocket}`,
    ...node.kubeletExtraArgs,
  ];
}

/** kube-proxy's KubeProxyConfiguration from spec.network.kubeProxy. */
export function kubeProxyConfiguration(config: ClusterConfig, node: NodeLayout): Record<string, unknown> {
  const e = effective(config, node);
  const kubeProxy = config.spec?.network?.kubeProxy ?? {};
  return {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clusterCIDR: e.podCIDR,
    mode: kubeProxy.mode ?? K0S_DEFAULTS.kubeProxyMode,
    ...(kubeProxy.metricsBindAddress === undefined ? {} : { metricsBindAddress: kubeProxy.metricsBindAddress }),
    ...(kubeProxy.healthzBindAddress === undefined ? {} : { healthzBindAddress: kubeProxy.healthzBindAddress }),
    ...(kubeProxy.nodePortAddresses === undefined ? {} : { nodePortAddresses: kubeProxy.nodePortAddresses }),
    iptables: { ...(kubeProxy.iptables ?? {}) },
  };
}

/** kube-router's arguments: k0s's (router and firewall on, service proxy left to kube-proxy), then extraArgs. */
export function kubeRouterArgs(config: ClusterConfig): string[] {
  const kubeRouter = config.spec?.network?.kuberouter ?? {};
  return flags(
    {
      "run-router": "true",
      "run-firewall": "true",
      "run-service-proxy": "false",
      "bgp-graceful-restart": "true",
      "enable-cni": "true",
      "auto-mtu": String(kubeRouter.autoMTU ?? true),
      "hairpin-mode": String((kubeRouter.hairpin ?? "Enabled") === "Enabled"),
      "metrics-port": String(kubeRouter.metricsPort ?? K0S_DEFAULTS.kubeRouterMetricsPort),
    },
    kubeRouter.extraArgs,
  );
}

/** The CNI configuration kube-router completes with the node's pod CIDR: its bridge, host-local and portmap. */
export function cniConfList(): Record<string, unknown> {
  return {
    cniVersion: "0.3.1",
    name: "kubernetes",
    plugins: [
      {
        name: "kubernetes",
        type: "bridge",
        bridge: "kube-bridge",
        isDefaultGateway: true,
        hairpinMode: true,
        ipam: { type: "host-local" },
      },
      { type: "portmap", capabilities: { snat: true, portMappings: true } },
    ],
  };
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === "object" && value !== null && !Array.isArray(value);
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over))
    merged[key] = isObject(value) && isObject(base[key]) ? deepMerge(base[key], value) : value;
  return merged;
}

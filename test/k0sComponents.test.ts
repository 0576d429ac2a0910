/**
 * The mapping from a k0s ClusterConfig to the node rung's test cluster of k0s's components
 * (e2e/node/k0sComponents.ts, e2e/node/systemManifests.ts): k0s's single-node defaults, and every
 * address k0s/workstation.yaml sets landing in the flag or setting that binds it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  controlPlaneArgs,
  effective,
  kubeletArgs,
  kubeletConfiguration,
  kubeProxyConfiguration,
  kubeRouterArgs,
  nthAddress,
  type ClusterConfig,
  type NodeLayout,
} from "../e2e/node/k0sComponents";
import { containerdConfig, mergeConfigs } from "../e2e/node/nodeFiles";
import { systemManifests } from "../e2e/node/systemManifests";

const ROOT = path.join(__dirname, "..");
const load = (file: string) => parse(fs.readFileSync(path.join(ROOT, file), "utf8"));
const WORKSTATION = load("k0s/workstation.yaml") as ClusterConfig;
const MERGED = mergeConfigs(WORKSTATION, load("e2e/node/k0s-test.yaml")) as ClusterConfig;
const HOST_ONLY = "10.255.255.254";
const NODE: NodeLayout = {
  nodeName: "workstation",
  dataDir: "/var/lib/k0s",
  runDir: "/run/k0s",
  kubeletExtraArgs: [`--node-ip=${HOST_ONLY}`],
};
/** A bare config: only the address k0s would otherwise take from the default route. */
const BARE: ClusterConfig = { spec: { api: { address: "192.0.2.10" } } };

const flag = (args: readonly string[], name: string) => {
  const found = args.filter((arg) => arg.startsWith(`--${name}=`));
  expect(found.length, `--${name} given ${found.length} times`).toBeLessThanOrEqual(1);
  return found[0]?.slice(name.length + 3);
};

/** Every command line and configuration the mapping renders for a config, as one list of "where: value". */
function rendered(config: ClusterConfig): { where: string; value: string }[] {
  const out: { where: string; value: string }[] = [];
  const walk = (where: string, value: unknown) => {
    if (Array.isArray(value)) value.forEach((item, index) => walk(`${where}[${index}]`, item));
    else if (typeof value === "object" && value !== null) for (const [key, item] of Object.entries(value)) walk(`${where}.${key}`, item);
    else out.push({ where, value: String(value) });
  };
  for (const [component, args] of Object.entries(controlPlaneArgs(config, NODE))) {
    for (const arg of args) walk(`${component} ${arg.split("=")[0]}`, arg.slice(arg.indexOf("=") + 1));
  }
  walk("kubelet-config", kubeletConfiguration(config, NODE));
  for (const arg of kubeletArgs(NODE)) walk(`kubelet ${arg.split("=")[0]}`, arg.slice(arg.indexOf("=") + 1));
  walk("kube-proxy-config", kubeProxyConfiguration(config, NODE));
  for (const arg of kubeRouterArgs(config)) walk(`kube-router ${arg.split("=")[0]}`, arg.slice(arg.indexOf("=") + 1));
  return out;
}

/** What binds a listener, by where it is rendered: the setting names of each component. */
const BIND_SETTING = /bind-address|metrics-addr|BindAddress|kubelet-config\.address$|listen-address/;

describe("k0s's single-node defaults", () => {
  it("derives the cluster's addresses from the service CIDR, as k0s does", () => {
    expect(effective(BARE, { ...NODE, kubeletExtraArgs: [] })).toMatchObject({
      apiAddress: "192.0.2.10",
      apiPort: 6443,
      podCIDR: "10.244.0.0/16",
      serviceCIDR: "10.96.0.0/12",
      clusterDomain: "cluster.local",
      apiServiceIP: "10.96.0.1",
      dnsServiceIP: "10.96.0.10",
      nodeIP: "192.0.2.10",
    });
  });

  it.each([
    ["10.96.0.0/12", 1, "10.96.0.1"],
    ["10.96.0.0/12", 10, "10.96.0.10"],
    ["172.30.0.0/16", 10, "172.30.0.10"],
    ["10.0.0.0/8", 256, "10.0.1.0"],
  ])("the %sth address of %s", (cidr, n, expected) => {
    expect(nthAddress(cidr, n)).toBe(expected);
  });

  it("refuses what it does not map, naming the field", () => {
    expect(() => effective({ spec: { api: { address: "192.0.2.10" }, storage: { type: "etcd" } } }, NODE)).toThrow("[storage.type]");
    expect(() => effective({ spec: { api: { address: "192.0.2.10" }, network: { provider: "calico" } } }, NODE)).toThrow(
      "[network.provider]",
    );
    expect(() => nthAddress("10.96.0.0", 1)).toThrow("not an IPv4 CIDR");
  });

  it("keeps kine's state in SQLite under the data dir and on a Unix socket the API server uses", () => {
    const args = controlPlaneArgs(BARE, NODE);
    expect(flag(args.kine, "endpoint")).toBe("sqlite:///var/lib/k0s/db/state.db?mode=rwc&_journal=WAL&cache=shared");
    expect(flag(args.kine, "listen-address")).toBe("unix:///run/k0s/kine/kine.sock:2379");
    expect(flag(args["kube-apiserver"], "etcd-servers")).toBe(flag(args.kine, "listen-address"));
  });

  it("without workstation.yaml's settings, binds what k0s binds to every address", () => {
    const args = controlPlaneArgs(BARE, NODE);
    expect(flag(args.kine, "metrics-bind-address")).toBe(":2380");
    expect(flag(args["kube-apiserver"], "bind-address")).toBeUndefined();
    expect(flag(kubeRouterArgs(BARE), "metrics-addr")).toBeUndefined();
    expect(kubeProxyConfiguration(BARE, NODE)).not.toHaveProperty("nodePortAddresses");
    expect(kubeletConfiguration(BARE, NODE)).not.toHaveProperty("address");
  });

  it("runs kube-router as the CNI and NetworkPolicy enforcer with k0s's settings, and kube-proxy in iptables mode", () => {
    const args = kubeRouterArgs(BARE);
    expect(args).toEqual(
      expect.arrayContaining([
        "--run-router=true",
        "--run-firewall=true",
        "--run-service-proxy=false",
        "--enable-cni=true",
        "--hairpin-mode=true",
        "--metrics-port=8080",
      ]),
    );
    expect(kubeProxyConfiguration(BARE, NODE)).toMatchObject({ mode: "iptables", clusterCIDR: "10.244.0.0/16" });
    expect(kubeletConfiguration(BARE, NODE)).toMatchObject({
      clusterDNS: ["10.96.0.10"],
      clusterDomain: "cluster.local",
      containerRuntimeEndpoint: "unix:///run/k0s/containerd.sock",
    });
  });
});

describe("k0s/workstation.yaml on the test cluster of k0s's components", () => {
  const args = controlPlaneArgs(MERGED, NODE);

  it("binds the API to the host-only address only, on its port", () => {
    expect(flag(args["kube-apiserver"], "bind-address")).toBe(HOST_ONLY);
    expect(flag(args["kube-apiserver"], "advertise-address")).toBe(HOST_ONLY);
    expect(flag(args["kube-apiserver"], "secure-port")).toBe("6443");
  });

  it("gives kine's metrics the loopback address workstation.yaml sets, replacing k0s's default once", () => {
    expect(flag(args.kine, "metrics-bind-address")).toBe("127.0.0.1:2380");
  });

  it("gives kube-router's metrics loopback, kube-proxy its metrics and NodePort addresses, and the kubelet the host-only address", () => {
    expect(flag(kubeRouterArgs(MERGED), "metrics-addr")).toBe("127.0.0.1");
    expect(kubeProxyConfiguration(MERGED, NODE)).toMatchObject({
      mode: "iptables",
      metricsBindAddress: "127.0.0.1:10249",
      nodePortAddresses: ["127.0.0.1/32"],
      iptables: { localhostNodePorts: true },
    });
    expect(kubeletConfiguration(MERGED, NODE)).toMatchObject({ address: HOST_ONLY, healthzBindAddress: "127.0.0.1" });
    expect(kubeletArgs(NODE)).toContain(`--node-ip=${HOST_ONLY}`);
    expect(kubeletArgs(NODE)).toContain("--containerd=/run/k0s/containerd.sock");
  });

  it("merges the test drop-in's worker profile values into the same profile, keeping workstation.yaml's", () => {
    expect(kubeletConfiguration(MERGED, NODE)).toMatchObject({ address: HOST_ONLY, failCgroupV1: false });
    expect(kubeletConfiguration(WORKSTATION, NODE)).not.toHaveProperty("failCgroupV1");
  });

  it("puts every address workstation.yaml names into what the components render", () => {
    const addresses = JSON.stringify(WORKSTATION).match(/\d+\.\d+\.\d+\.\d+(?::\d+|\/\d+)?/g) ?? [];
    expect(addresses.length).toBeGreaterThan(3);
    const values = rendered(MERGED).map((entry) => entry.value);
    // The API's SANs go into its certificate (e2e/node/pki.ts), the rest into a flag or a setting.
    const sans = new Set(MERGED.spec?.api?.sans ?? []);
    for (const address of addresses.filter((candidate) => !sans.has(candidate))) {
      expect(
        values.some((value) => value.includes(address)),
        address,
      ).toBe(true);
    }
  });

  it("binds nothing to every address that workstation.yaml moves to loopback or the host-only address", () => {
    const binds = rendered(MERGED).filter((entry) => BIND_SETTING.test(entry.where));
    expect(binds.map((entry) => entry.where).sort()).toEqual(
      expect.arrayContaining([
        "kine --metrics-bind-address",
        "kube-apiserver --bind-address",
        "kube-controller-manager --bind-address",
        "kube-scheduler --bind-address",
        "kube-router --metrics-addr",
        "kube-proxy-config.metricsBindAddress",
        "kubelet-config.address",
        "kubelet-config.healthzBindAddress",
      ]),
    );
    const open = binds.filter((entry) => /^(0\.0\.0\.0|::|\[::\])?(:\d+)?$/.test(entry.value));
    expect(open).toEqual([]);
    for (const entry of binds.filter((candidate) => !candidate.where.startsWith("kine --listen"))) {
      expect(entry.value, entry.where).toMatch(/^(127\.0\.0\.1|10\.255\.255\.254)(:\d+)?$/);
    }
  });

  it("renders the system pods from the same mapping: CoreDNS on the tenth service address, kube-router and kube-proxy as configured", () => {
    const objects = systemManifests(MERGED, NODE);
    const find = (kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name);
    expect(find("Service", "kube-dns")?.spec.clusterIP).toBe("10.96.0.10");
    const router = find("DaemonSet", "kube-router")?.spec.template.spec.containers[0];
    expect(router.command).toContain("--metrics-addr=127.0.0.1");
    expect(router.env).toContainEqual({ name: "KUBERNETES_SERVICE_HOST", value: HOST_ONLY });
    expect(JSON.parse(find("ConfigMap", "kube-proxy")?.data["config.conf"])).toMatchObject({ nodePortAddresses: ["127.0.0.1/32"] });
    expect(objects.filter((object) => object.kind === "DaemonSet").map((object) => object.metadata.name)).toEqual([
      "kube-proxy",
      "kube-router",
    ]);
  });

  it("points containerd at the run dir's socket and imports the drop-ins k0s would", () => {
    const toml = containerdConfig(NODE, "k0s-platform.local/pause:3.10.1");
    expect(toml).toContain('address = "/run/k0s/containerd.sock"');
    expect(toml).toContain('imports = ["/etc/k0s/containerd.d/*.toml"]');
    expect(toml).toContain('sandbox = "k0s-platform.local/pause:3.10.1"');
  });
});

describe("mergeConfigs", () => {
  it("merges maps, merges named list items by name, and replaces anything else", () => {
    expect(
      mergeConfigs(
        { a: { b: 1, c: [1, 2] }, profiles: [{ name: "default", values: { x: 1 } }] },
        { a: { c: [3] }, profiles: [{ name: "default", values: { y: 2 } }, { name: "extra" }] },
      ),
    ).toEqual({ a: { b: 1, c: [3] }, profiles: [{ name: "default", values: { x: 1, y: 2 } }, { name: "extra" }] });
  });
});

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { MONITORING_DATA_DIR } from "../components/lib/k0s";
import { K0S_DEFAULTS } from "../e2e/node/k0sComponents";
import { ROOT } from "./lib/program";

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const config = parse(read("k0s/workstation.yaml"));
const networkScript = read("k0s/workstation-network.sh");
const hostOnly = /ADDRESS=\$\{K0S_HOST_ADDRESS:-([0-9.]+)\}/.exec(networkScript)![1];

describe("k0s/workstation.yaml", () => {
  it("is a k0s ClusterConfig", () => {
    expect(config).toMatchObject({ apiVersion: "k0s.k0sproject.io/v1beta1", kind: "ClusterConfig" });
  });

  // The apiserver publishes its address as the kubernetes Service's endpoint and refuses loopback,
  // link-local and unspecified ones; with such an address pods cannot reach the API and k0s's worker
  // never starts (found on the real node: 127.0.0.1 did exactly that).
  it("puts the API on an address Kubernetes accepts as the kubernetes Service's endpoint", () => {
    const address: string = config.spec.api.address;
    expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(address).not.toMatch(/^(127\.|169\.254\.|0\.)/);
  });

  it("binds the API and the kubelet to the host-only address, and NodePorts and metrics to 127.0.0.1", () => {
    expect(config.spec.api).toMatchObject({ address: hostOnly, onlyBindToAddress: true, sans: expect.arrayContaining([hostOnly]) });
    const kubelet = config.spec.workerProfiles.find((profile: { name: string }) => profile.name === "default").values;
    expect(kubelet).toMatchObject({ address: hostOnly, healthzBindAddress: "127.0.0.1" });
    expect(config.spec.network.kubeProxy).toMatchObject({ nodePortAddresses: ["127.0.0.1/32"], metricsBindAddress: "127.0.0.1:10249" });
    expect(config.spec.network.kuberouter.extraArgs).toEqual({ "metrics-addr": "127.0.0.1" });
    expect(config.spec.storage.kine.extraArgs).toEqual({ "metrics-bind-address": "127.0.0.1:2380" });
  });

  it("agrees with the install line it documents, the README's, and the network script on the host-only address", () => {
    // From a copy in /etc/k0s: the service k0s installs must not point into a clone that may move.
    const copy = "sudo install -D -m 0600 k0s/workstation.yaml /etc/k0s/k0s.yaml";
    const installLine = `sudo k0s install controller --single -c /etc/k0s/k0s.yaml --kubelet-extra-args=--node-ip=${hostOnly}`;
    for (const file of ["k0s/workstation.yaml", "README.md"]) {
      expect(read(file)).toContain(copy);
      expect(read(file)).toContain(installLine);
      expect(read(file).indexOf(copy)).toBeLessThan(read(file).indexOf(installLine));
    }
  });

  it("has the README create monitoring's data directory, as the remote and ssh targets' install steps do", () => {
    expect(read("README.md")).toContain(`sudo install -d -m 0700 ${MONITORING_DATA_DIR}`);
  });
});

describe("k0s/workstation-network.sh and its systemd units", () => {
  const defaultOf = (variable: string) => new RegExp(`${variable}=\\$\\{K0S_[A-Z_]+:-([^}]+)\\}`).exec(networkScript)?.[1];
  const service = read("k0s/k0s-workstation-network.service");
  const dropIn = read("k0s/k0s-workstation-network.conf");
  const INSTALLED = "/usr/local/sbin/k0s-workstation-network";

  it("guards the ranges the workstation's cluster uses: k0s's defaults, which workstation.yaml keeps", () => {
    expect(config.spec.network?.podCIDR).toBeUndefined();
    expect(config.spec.network?.serviceCIDR).toBeUndefined();
    expect([defaultOf("POD_CIDR"), defaultOf("SERVICE_CIDR")]).toEqual([K0S_DEFAULTS.podCIDR, K0S_DEFAULTS.serviceCIDR]);
  });

  it("says what up and down do with --help, changing nothing, and refuses anything else", () => {
    const run = (...args: string[]) => spawnSync("bash", [path.join(ROOT, "k0s/workstation-network.sh"), ...args], { encoding: "utf8" });
    const help = run("--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: .* up\|down\n {2}up {4}the host-only address 10\.255\.255\.254 on lo and the nftables guard/);
    const wrong = run("start");
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain("--help says what each does");
  });

  it("is put back by nftables.service after each start and reload, whose flush ruleset removes it", () => {
    expect(dropIn).toMatch(/^\[Service\]$/m);
    expect(dropIn).toContain(`ExecStartPost=${INSTALLED} up`);
    expect(dropIn).toContain(`ExecReload=${INSTALLED} up`);
    expect(service).toContain(`ExecStart=${INSTALLED} up`);
    const installs = read("README.md");
    expect(installs).toContain(`sudo install -m 0755 k0s/workstation-network.sh ${INSTALLED}`);
    expect(installs).toContain(
      "sudo install -D -m 0644 k0s/k0s-workstation-network.conf /etc/systemd/system/nftables.service.d/k0s-workstation-network.conf",
    );
  });

  it("starts before k0s, so k0s never listens unguarded", () => {
    expect(service).toMatch(/^Before=k0scontroller\.service$/m);
    expect(service).toMatch(/^RequiredBy=k0scontroller\.service$/m);
  });
});

import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { installK0sScript, K0S_CONFIG_PATH, renderK0sConfig, rewriteKubeconfigServer, waitForHostScript } from "../components/lib/k0s";
import { K0S_ADMIN_KUBECONFIG } from "./lib/cloud";

describe("renderK0sConfig", () => {
  it("merges more of the spec under the API port and SANs, which stay the program's", () => {
    const images = { kuberouter: { cni: { image: "registry.example/kube-router", version: "v2.1.0" } } };
    const config = parse(
      renderK0sConfig({ sans: ["203.0.113.10"], spec: { images, api: { port: 1, sans: ["x"], extraArgs: { a: "b" } } } }),
    );
    expect(config.spec).toEqual({
      telemetry: { enabled: false },
      images,
      api: { extraArgs: { a: "b" }, port: 6443, sans: ["203.0.113.10"] },
    });
  });

  it("puts the reserved IP and the API name into the certificate SANs", () => {
    const config = parse(renderK0sConfig({ sans: ["203.0.113.10", "api.example.com"] }));
    expect(config).toMatchObject({ apiVersion: "k0s.k0sproject.io/v1beta1", kind: "ClusterConfig" });
    expect(config.spec.api).toEqual({ port: 6443, sans: ["203.0.113.10", "api.example.com"] });
  });
});

describe("installK0sScript", () => {
  const PIN = "a".repeat(64);
  const download = installK0sScript({ version: "v1.35.4+k0s.0", uploaded: false });
  const pinned = installK0sScript({ version: "v1.35.4+k0s.0", sha256: PIN, uploaded: false });
  const uploaded = installK0sScript({ version: "v1.35.4+k0s.0", sha256: PIN, uploaded: true });

  it("downloads exactly the pinned release over HTTPS and fails on any error", () => {
    expect(download.split("\n")[0]).toBe("set -euo pipefail");
    expect(download).toContain("https://github.com/k0sproject/k0s/releases/download/v1.35.4+k0s.0/k0s-v1.35.4+k0s.0-amd64");
    expect(download).not.toMatch(/get\.k0s\.sh|\| *sh\b/);
  });

  it("checks the binary against the release's published sha256sums.txt, or the pin when one is set", () => {
    expect(download).toContain("https://github.com/k0sproject/k0s/releases/download/v1.35.4+k0s.0/sha256sums.txt");
    expect(pinned).toContain(`expected='${PIN}'`);
    expect(pinned).not.toContain("sha256sums.txt");
    for (const script of [download, pinned, uploaded]) {
      const check = script.indexOf('if [ "$actual" != "$expected" ]');
      expect(check, "the check comes before the binary is moved into place").toBeGreaterThan(0);
      expect(check).toBeLessThan(script.indexOf('mv "$new" /usr/local/bin/k0s'));
      expect(check).toBeLessThan(script.indexOf("k0s install controller"));
    }
  });

  it("installs an uploaded binary, never downloading one", () => {
    expect(uploaded).toContain("new=/usr/local/bin/k0s.upload");
    expect(uploaded).not.toContain("curl");
  });

  it("installs the single-node service once, with our config, and waits a bounded time for the API", () => {
    expect(download).toContain(`k0s install controller --single -c ${K0S_CONFIG_PATH}`);
    expect(download).toMatch(/if \[ ! -e \/etc\/systemd\/system\/k0scontroller\.service \]; then\n {2}k0s install/);
    expect(download).toMatch(/timeout \d+ bash -c 'until k0s kubectl get --raw=\/readyz/);
    // A timed-out wait says what it waited for, rather than timeout(1)'s silent exit 124.
    expect(download).toContain('echo "k0s $want did not become ready within 360 s: see journalctl -u k0scontroller" >&2; exit 1;');
    expect(pinned).toMatchSnapshot();
  });

  it("is valid bash, like every script sent over SSH", () => {
    for (const text of [download, pinned, uploaded, waitForHostScript()])
      expect(() => execFileSync("bash", ["-n"], { input: text })).not.toThrow();
  });

  it("refuses an unpinned version, and an upload without a pinned sha256", () => {
    expect(() => installK0sScript({ version: "latest", uploaded: false })).toThrow(/\[version\] "latest"/);
    expect(() => installK0sScript({ version: "v1.35.4+k0s.0", uploaded: true })).toThrow(/needs a pinned sha256/);
  });

  it("waits for cloud-init where it runs, with a bound, and prepares the config and images directories", () => {
    expect(waitForHostScript()).toMatch(/if \[ -d \/var\/lib\/cloud \]; then\n {2}timeout 300/);
    expect(waitForHostScript()).toContain(`echo "the host's first boot (cloud-init) did not finish within 300 s" >&2; exit 1;`);
    expect(waitForHostScript()).toContain("install -d -m 0700 /etc/k0s");
    expect(waitForHostScript()).toContain("install -d -m 0755 /var/lib/k0s/images");
  });
});

describe("rewriteKubeconfigServer", () => {
  it("points the cluster at the reserved IP and leaves credentials alone", () => {
    const rewritten = parse(rewriteKubeconfigServer(K0S_ADMIN_KUBECONFIG, "https://203.0.113.10:6443"));
    const original = parse(K0S_ADMIN_KUBECONFIG);
    expect(rewritten.clusters[0].cluster.server).toBe("https://203.0.113.10:6443");
    expect(rewritten.users).toEqual(original.users);
    expect(rewritten.clusters[0].cluster["certificate-authority-data"]).toBe(original.clusters[0].cluster["certificate-authority-data"]);
  });

  it("changes only server fields, even where the old address appears elsewhere", () => {
    const tricky = K0S_ADMIN_KUBECONFIG.replace("name: local", "name: https://10.19.0.5:6443");
    const rewritten = parse(rewriteKubeconfigServer(tricky, "https://203.0.113.10:6443"));
    expect(rewritten.clusters[0].name).toBe("https://10.19.0.5:6443");
    expect(rewritten.contexts[0].context.cluster).toBe("local");
  });

  it.each(["", "kind: Config\nclusters: []\n", "clusters:\n- name: x\n"])("refuses a kubeconfig without clusters: %j", (text) => {
    expect(() => rewriteKubeconfigServer(text, "https://203.0.113.10:6443")).toThrow(/no clusters/);
  });
});

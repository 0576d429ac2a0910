import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  asRoot,
  authorizedKeysScript,
  hostFirewallApplyScript,
  hostFirewallScript,
  installK0sScript,
  K0S_CONFIG_PATH,
  podNetworks,
  renderK0sConfig,
  rewriteKubeconfig,
  waitForHostScript,
} from "../components/lib/k0s";
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
    expect(download).toContain(`-o "$new" 'https://github.com/k0sproject/k0s/releases/download/v1.35.4+k0s.0/'"$asset"`);
    expect(download).not.toMatch(/get\.k0s\.sh|\| *sh\b/);
  });

  it.each([
    ["x86_64", "k0s-v1.35.4+k0s.0-amd64"],
    ["aarch64", "k0s-v1.35.4+k0s.0-arm64"],
  ])("downloads, on a host whose uname -m is %s, the release's %s", (machine, asset) => {
    expect(assetOn(machine)).toEqual({ status: 0, output: asset });
  });

  it("refuses a host of any other architecture, naming it", () => {
    expect(assetOn("riscv64")).toEqual({ status: 1, output: "k0s-platform installs k0s on amd64 and arm64 hosts; this one is riscv64" });
  });

  /** The download's choice of asset, run by bash with `uname -m` answering `machine`. */
  function assetOn(machine: string): { status: number; output: string } {
    const choice = /^ {2}case "\$\(uname -m\)" in$[\s\S]*?^ {2}esac$/m.exec(download)![0];
    const result = spawnSync("bash", ["-c", `uname() { echo ${machine}; }\nwant='v1.35.4+k0s.0'\n${choice}\necho "$asset"`], {
      encoding: "utf8",
    });
    return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}`.trim() };
  }

  it("checks the binary against the release's published sha256sums.txt, or the pin when one is set", () => {
    expect(download).toContain("https://github.com/k0sproject/k0s/releases/download/v1.35.4+k0s.0/sha256sums.txt");
    expect(pinned).toContain(`expected='${PIN}'`);
    expect(pinned).not.toContain("sha256sums.txt");
    for (const script of [download, pinned, uploaded]) {
      const check = script.indexOf('if [ "$actual" != "$expected" ]');
      expect(check, "the check comes before the binary is moved into place").toBeGreaterThan(0);
      expect(check).toBeLessThan(script.indexOf('install -m 0755 "$new" /usr/local/bin/k0s.new'));
      expect(check).toBeLessThan(script.indexOf("k0s install controller"));
    }
  });

  it("installs an uploaded binary, never downloading one", () => {
    expect(uploaded).toContain("new=/var/lib/k0s-platform/upload/k0s");
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
    for (const text of [download, pinned, uploaded, waitForHostScript("root")])
      expect(() => execFileSync("bash", ["-n"], { input: text })).not.toThrow();
  });

  it("refuses an unpinned version, and an upload without a pinned sha256", () => {
    expect(() => installK0sScript({ version: "latest", uploaded: false })).toThrow(/\[version\] "latest"/);
    expect(() => installK0sScript({ version: "v1.35.4+k0s.0", uploaded: true })).toThrow(/needs a pinned sha256/);
  });

  it("waits for cloud-init where it runs, with a bound, and prepares the config and images directories", () => {
    expect(waitForHostScript("root")).toMatch(/if \[ -d \/var\/lib\/cloud \]; then\n {2}timeout 300/);
    expect(waitForHostScript("root")).toContain(`echo "the host's first boot (cloud-init) did not finish within 300 s" >&2; exit 1;`);
    expect(waitForHostScript("root")).toContain("install -d -m 0700 /etc/k0s");
    expect(waitForHostScript("root")).toContain("install -d -m 0755 /var/lib/k0s/images");
    expect(waitForHostScript("root")).toContain("install -d -m 0700 /var/lib/victoria-metrics");
  });

  it("prepares an upload directory the SSH user owns, so a non-root user can upload what the install step puts in place", () => {
    expect(waitForHostScript("ops")).toContain("chown -R ops /var/lib/k0s-platform/upload");
  });

  it("puts the uploaded config in place only after the binary passed its check, so a refused k0s changes nothing", () => {
    for (const script of [download, pinned, uploaded]) {
      const placed = script.indexOf("install -m 0600 /var/lib/k0s-platform/upload/k0s.yaml /etc/k0s/k0s.yaml");
      expect(placed).toBeGreaterThan(script.indexOf('if [ "$actual" != "$expected" ]'));
      expect(placed).toBeLessThan(script.indexOf("systemctl restart k0scontroller"));
    }
    expect(installK0sScript({ version: "v1.35.4+k0s.0", uploaded: false, imagesUploaded: true })).toContain(
      "cp -R --preserve=timestamps /var/lib/k0s-platform/upload/images/. /var/lib/k0s/images/",
    );
    expect(download).not.toContain("/var/lib/k0s/images/");
  });
});

describe("asRoot", () => {
  /** Runs `asRoot(script, "ops")` in bash with a stand-in sudo that `allows` or asks for a password. */
  function asOps(script: string, allows: boolean): { status: number; output: string } {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-sudo-"));
    try {
      const sudo = allows
        ? '#!/bin/bash\n[ "$1" = -n ] && shift\nSUDO_RAN=1 exec "$@"\n'
        : "#!/bin/bash\necho 'sudo: a password is required' >&2\nexit 1\n";
      fs.writeFileSync(path.join(bin, "sudo"), sudo, { mode: 0o755 });
      const result = spawnSync("bash", ["-c", asRoot(script, "ops")], {
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin` },
        // A socket on stdin (Node's pipes) makes bash read ~/.bashrc as if started by sshd.
        stdio: ["ignore", "pipe", "pipe"],
      });
      return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}`.trim() };
    } finally {
      fs.rmSync(bin, { recursive: true });
    }
  }

  it("leaves root's scripts as they are", () => {
    expect(asRoot("k0s version", "root")).toBe("k0s version");
  });

  it("runs a non-root user's script through sudo, quotes and exit status intact", () => {
    expect(asOps(`echo "it's $SUDO_RAN"; exit 3`, true)).toEqual({ status: 3, output: "it's 1" });
  });

  it("stops with what to configure when sudo would ask for a password", () => {
    expect(asOps("echo never", false)).toEqual({
      status: 1,
      output: "sshUser ops must be root or run sudo without a password (a NOPASSWD entry in /etc/sudoers.d) for the install steps",
    });
  });
});

describe("rewriteKubeconfig", () => {
  const rewrite = (text: string) => parse(rewriteKubeconfig(text, "https://203.0.113.10:6443", "k0s-platform-acme-remote"));

  it("points the cluster at the reserved IP and leaves credentials alone", () => {
    const rewritten = rewrite(K0S_ADMIN_KUBECONFIG);
    const original = parse(K0S_ADMIN_KUBECONFIG);
    expect(rewritten.clusters[0].cluster.server).toBe("https://203.0.113.10:6443");
    expect(rewritten.users[0].user).toEqual(original.users[0].user);
    expect(rewritten.clusters[0].cluster["certificate-authority-data"]).toBe(original.clusters[0].cluster["certificate-authority-data"]);
  });

  it("names the cluster, user and context after the stack, not k0s's Default, so two clusters' kubeconfigs merge", () => {
    const rewritten = rewrite(K0S_ADMIN_KUBECONFIG);
    expect(rewritten["current-context"]).toBe("k0s-platform-acme-remote");
    expect(rewritten.contexts).toEqual([
      {
        name: "k0s-platform-acme-remote",
        context: { cluster: "k0s-platform-acme-remote", namespace: "default", user: "k0s-platform-acme-remote-admin" },
      },
    ]);
    expect(rewritten.users.map((user: { name: string }) => user.name)).toEqual(["k0s-platform-acme-remote-admin"]);
  });

  it("rewrites only the server field's address, even where the old address appears elsewhere", () => {
    const tricky = K0S_ADMIN_KUBECONFIG.replace("namespace: default", "namespace: https://10.19.0.5:6443");
    expect(rewrite(tricky).contexts[0].context.namespace).toBe("https://10.19.0.5:6443");
  });

  it.each(["", "kind: Config\nclusters: []\n", "clusters:\n- name: x\n"])("refuses a kubeconfig without clusters: %j", (text) => {
    expect(() => rewrite(text)).toThrow(/no clusters/);
  });
});

describe("podNetworks", () => {
  it("is k0s's default kube-router network, reached on kube-bridge, unless the spec says otherwise", () => {
    expect(podNetworks({})).toEqual([{ cidr: "10.244.0.0/16", iface: "kube-bridge" }]);
    expect(podNetworks({ network: { provider: "calico", podCIDR: "10.42.0.0/16" } })).toEqual([{ cidr: "10.42.0.0/16", iface: "cali+" }]);
    expect(podNetworks({ network: { podCIDR: "10.42.0.0/16", dualStack: { enabled: true, IPv6podCIDR: "fd00:10:244::/56" } } })).toEqual([
      { cidr: "10.42.0.0/16", iface: "kube-bridge" },
      { cidr: "fd00:10:244::/56", iface: "kube-bridge" },
    ]);
    expect(podNetworks({ network: { provider: "custom" } })).toEqual([{ cidr: "10.244.0.0/16", iface: undefined }]);
  });
});

describe("the host firewall", () => {
  const options = {
    ports: [6443, 10250],
    adminCidrs: ["203.0.113.0/24", "2001:db8:1::/48"],
    podNetworks: [{ cidr: "10.244.0.0/16", iface: "kube-bridge" }],
  };
  const apply = hostFirewallApplyScript(options);
  const rules = (script: string, tool: "iptables" | "ip6tables") =>
    new RegExp(`${tool}-restore --noflush <<'RULES'\n([\\s\\S]*?)\nRULES`).exec(script)![1].split("\n");

  it("lets only the host, its pods (on their interface) and the admin networks reach the API and the kubelet, IPv4", () => {
    expect(rules(apply, "iptables")).toEqual([
      "*raw",
      ":K0S-PLATFORM-GUARD - [0:0]",
      ":K0S-PLATFORM-ADMINS - [0:0]",
      "-A K0S-PLATFORM-GUARD -i lo -j RETURN",
      "-A K0S-PLATFORM-GUARD -d 169.254.169.254/32 -j DROP",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 6443 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 10250 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-ADMINS -s 10.244.0.0/16 -i kube-bridge -j RETURN",
      "-A K0S-PLATFORM-ADMINS -s 203.0.113.0/24 -j RETURN",
      "-A K0S-PLATFORM-ADMINS -j DROP",
      "COMMIT",
    ]);
  });

  it("guards IPv6 as well, with only the IPv6 admin networks", () => {
    expect(rules(apply, "ip6tables")).toEqual([
      "*raw",
      ":K0S-PLATFORM-GUARD - [0:0]",
      ":K0S-PLATFORM-ADMINS - [0:0]",
      "-A K0S-PLATFORM-GUARD -i lo -j RETURN",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 6443 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 10250 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-ADMINS -s 2001:db8:1::/48 -j RETURN",
      "-A K0S-PLATFORM-ADMINS -j DROP",
      "COMMIT",
    ]);
  });

  it("jumps to the guard once, ahead of everything, and fails (rather than run unguarded) without iptables", () => {
    expect(apply).toContain(
      "iptables -t raw -C PREROUTING -j K0S-PLATFORM-GUARD 2>/dev/null || iptables -t raw -I PREROUTING 1 -j K0S-PLATFORM-GUARD",
    );
    expect(apply).toContain(
      "ip6tables -t raw -C PREROUTING -j K0S-PLATFORM-GUARD 2>/dev/null || ip6tables -t raw -I PREROUTING 1 -j K0S-PLATFORM-GUARD",
    );
    expect(apply).toContain(
      `command -v "$tool" >/dev/null || { echo "no $tool on this host, so no host firewall: install the iptables package" >&2; exit 1; }`,
    );
    expect(apply.split("\n")[0]).toBe("set -euo pipefail");
  });

  it("persists as a script and a unit that loads it on every boot, before the network and k0s", () => {
    const script = hostFirewallScript(options);
    expect(script).toContain(`cat > /usr/local/sbin/k0s-platform-host-firewall.new <<'SCRIPT'\n#!/bin/bash\n${apply}\nSCRIPT`);
    expect(script).toContain("Before=network-pre.target k0scontroller.service");
    expect(script).toContain("WantedBy=sysinit.target");
    expect(script).toContain("systemctl enable k0s-platform-host-firewall.service");
    expect(script.split("\n").pop()).toBe("/usr/local/sbin/k0s-platform-host-firewall");
  });

  const canRun = spawnSync("unshare", ["-rn", "sh", "-c", "iptables-restore --version && ip6tables-restore --version"]).status === 0;
  it.skipIf(!canRun)(
    "applies to a real netfilter (a private network namespace), again and again to the same rules, and replaces old networks",
    () => {
      // What the kernel holds, as iptables-save prints it (its own order of chains, one family at a time).
      const inNamespace = (...scripts: string[]) =>
        execFileSync("unshare", ["-rn", "bash", "-c", `${scripts.join("\n")}\niptables-save -t raw; echo ---; ip6tables-save -t raw`], {
          encoding: "utf8",
        })
          .split("---")
          .map((family) =>
            family
              .split("\n")
              .filter((line) => line.startsWith("-A"))
              .sort(),
          );
      const once = inNamespace(apply);
      const declared = (tool: "iptables" | "ip6tables") =>
        ["-A PREROUTING -j K0S-PLATFORM-GUARD", ...rules(apply, tool).filter((line) => line.startsWith("-A"))].sort();
      expect(once).toEqual([declared("iptables"), declared("ip6tables")]);
      expect(inNamespace(apply, apply)).toEqual(once);
      const moved = hostFirewallApplyScript({ ...options, adminCidrs: ["198.51.100.0/24"] });
      const after = inNamespace(apply, moved);
      expect(after[0]).toContain("-A K0S-PLATFORM-ADMINS -s 198.51.100.0/24 -j RETURN");
      expect(after.flat().join("\n")).not.toContain("203.0.113.0/24");
      expect(after.flat().join("\n")).not.toContain("2001:db8:1::/48");
      expect(after.flat().filter((line) => line === "-A PREROUTING -j K0S-PLATFORM-GUARD")).toHaveLength(2);
    },
  );

  it("is valid bash", () => {
    for (const text of [apply, hostFirewallScript(options)]) expect(() => execFileSync("bash", ["-n"], { input: text })).not.toThrow();
  });
});

describe("authorizedKeysScript", () => {
  const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme";

  it("makes the key the only one, atomically, with the permissions sshd requires", () => {
    const script = authorizedKeysScript(key);
    expect(script).toContain(`key='${key}'`);
    expect(script).toContain('install -d -m 0700 "$HOME/.ssh"');
    expect(script).toContain('chmod 0600 "$tmp"');
    expect(script.split("\n").pop()).toBe('mv -f "$tmp" "$HOME/.ssh/authorized_keys"');
  });

  it("writes exactly the key, whatever its comment holds, and the same file again on a second run", () => {
    const home = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    const tricky = `${key.split(" ").slice(0, 2).join(" ")} it's $(touch pwned) ops`;
    for (const run of [1, 2]) {
      execFileSync("bash", ["-c", authorizedKeysScript(tricky)], { env: { ...process.env, HOME: home }, cwd: home });
      expect(execFileSync("cat", [`${home}/.ssh/authorized_keys`], { encoding: "utf8" }), `run ${run}`).toBe(`${tricky}\n`);
    }
    expect(execFileSync("ls", ["-A", home, `${home}/.ssh`], { encoding: "utf8" })).not.toMatch(/pwned|authorized_keys\./);
    execFileSync("rm", ["-rf", home]);
  });
});

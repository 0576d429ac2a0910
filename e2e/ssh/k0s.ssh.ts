/**
 * The SSH-host rung: k0s installed over SSH, by the real pulumi CLI and the real command provider,
 * onto a rehearsal host that boots like a fresh droplet (Debian 12, systemd, OpenSSH). The stack is
 * an `ssh`-target stack with the remote stack's environments, air-gapped as the rehearsal's
 * internet is: the k0s binary (built with its components embedded, as the release is) and the image
 * bundles are uploaded, and the binary is installed only once its sha256 matches the pin.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { parse, stringify } from "yaml";
import { ACME_EMAIL_VARIABLE, CLUSTER_SETTINGS_NAME } from "../../components/lib/flux";
import { installK0sScript, K0S_UPLOAD_PATH } from "../../components/lib/k0s";
import { leftoversSince, snapshot, type Snapshot } from "../harness/leftovers";
import { story } from "../harness/story";
import { run } from "../harness/processes";
import { pulumiCli, ROOT, type PulumiCli } from "../harness/pulumiCli";
import { FLUX_INSTALL_MANIFEST, TOOLCHAIN, TOOLCHAIN_BIN, TOOLCHAIN_IMAGES } from "../harness/toolchain";
import { DROPLET_ADDRESS, startDroplet, type Droplet } from "./droplet";

const K0S_VERSION = "v1.35.4+k0s.0";
const K0S = path.join(TOOLCHAIN_BIN, "k0s-embedded");
const STACK = "edge";
const ACME_EMAIL = "platform@acme-consulting.eu";

let before: Snapshot;
let droplet: Droplet;
let cli: PulumiCli;
let privateKey: string;
let pin: string;
const rung = story();
const { step } = rung;
let stopped = false;
/** Everything the CLI printed, engine and provider logs included, for the secrecy check. */
const transcripts: string[] = [];

beforeAll(async () => {
  before = snapshot();
  const keys = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-ssh-keys-"));
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ops@rehearsal", "-f", path.join(keys, "id_ed25519")]);
  privateKey = fs.readFileSync(path.join(keys, "id_ed25519"), "utf8");
  const publicKey = fs.readFileSync(path.join(keys, "id_ed25519.pub"), "utf8");
  fs.rmSync(keys, { recursive: true });
  droplet = await startDroplet({ rootfsTar: path.join(TOOLCHAIN, "droplet-rootfs.tar"), authorizedKey: publicKey });
  // The CLI runs on the operator's machine, which reaches the droplet over the rehearsal's internet.
  cli = pulumiCli(path.join(droplet.dir, "pulumi"), (argv) => droplet.internet.wrap(argv));
  pin = createHash("sha256").update(fs.readFileSync(K0S)).digest("hex");
  writeStackFile(STACK, { sshHostKey: droplet.hostKey() });
  cli.pulumi("stack", "init", STACK);
  // As the README says: the private key goes in as a secret, from stdin.
  expectOk(cli.run(["config", "set", "--secret", "--stack", STACK, "sshPrivateKey"], { input: privateKey }));
}, 300_000);

afterAll(async () => {
  if (stopped || droplet === undefined) return;
  if (rung.failed) console.log(droplet.diagnostics());
  if (process.env.E2E_KEEP === "1") {
    console.log(`E2E_KEEP=1: the droplet keeps running in ${droplet.dir}`);
    return;
  }
  await droplet.stop();
});

function expectOk(result: { status: number; output: string }): string {
  transcripts.push(result.output);
  if (result.status !== 0) throw new Error(`pulumi failed (${result.status}):\n${result.output.slice(-6000)}`);
  return result.output;
}

/** The stack file a user writes for k0s on a server they have, with the remote's environments. */
function writeStackFile(stack: string, settings: Record<string, unknown>): void {
  const remote = parse(fs.readFileSync(path.join(ROOT, "Pulumi.remote.yaml"), "utf8")).config;
  // The node kit's images where it holds other versions than k0s deploys (see e2e/node/k0s-test.yaml).
  const images = parse(fs.readFileSync(path.join(ROOT, "e2e/node/k0s-test.yaml"), "utf8")).spec.images;
  const config: Record<string, unknown> = {
    target: "ssh",
    sshHost: DROPLET_ADDRESS,
    k0sVersion: K0S_VERSION,
    k0sBinary: K0S,
    k0sSha256: pin,
    k0sAirgapImages: TOOLCHAIN_IMAGES,
    k0sSpec: { images },
    environments: remote["k0s-platform:environments"],
    flux: { ...remote["k0s-platform:flux"], manifestPath: FLUX_INSTALL_MANIFEST },
    acmeEmail: ACME_EMAIL,
    ...settings,
  };
  fs.writeFileSync(
    path.join(cli.projectDir, `Pulumi.${stack}.yaml`),
    stringify({ config: Object.fromEntries(Object.entries(config).map(([key, value]) => [`k0s-platform:${key}`, value])) }),
  );
}

/** The stack's kubeconfig output as a file, written once per update of the stack. */
let kubeconfigPath: string | undefined;
const up = (stack = STACK, ...flags: string[]) => {
  kubeconfigPath = undefined;
  return expectOk(cli.run(["up", "--stack", stack, "--yes", "--skip-preview", ...flags]));
};
const kubeconfigFile = () => {
  if (kubeconfigPath === undefined) {
    const file = path.join(droplet.dir, "kubeconfig");
    fs.writeFileSync(file, cli.pulumi("stack", "output", "kubeconfig", "--show-secrets", "--stack", STACK), { mode: 0o600 });
    kubeconfigPath = file;
  }
  return kubeconfigPath;
};
/** kubectl from the operator's machine, through the stack's kubeconfig output. */
const kubectl = (...args: string[]) =>
  droplet.internet.run(path.join(TOOLCHAIN_BIN, "k0s"), "kubectl", `--kubeconfig=${kubeconfigFile()}`, ...args);
/** The subjectAltName of the certificate the API serves on the droplet's address. */
const apiCertificateSans = () =>
  droplet.internet.run(
    "sh",
    "-c",
    `openssl s_client -connect ${DROPLET_ADDRESS}:6443 </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName`,
  );
const k0sStartedAt = () => droplet.exec("systemctl", "show", "k0scontroller", "-p", "ActiveEnterTimestampMonotonic").trim();
const uidsOf = (kind: string) =>
  kubectl("get", kind, "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.metadata.uid} {end}");

describe("pulumi up over SSH", () => {
  step(
    "refuses a tampered k0s binary before any SSH session, and nothing is installed",
    () => {
      const tampered = path.join(droplet.dir, "k0s-tampered");
      fs.copyFileSync(K0S, tampered);
      fs.appendFileSync(tampered, "tampered");
      cli.pulumi("config", "set", "--stack", STACK, "k0sBinary", tampered);
      const result = cli.run(["up", "--stack", STACK, "--yes", "--skip-preview"]);
      cli.pulumi("config", "set", "--stack", STACK, "k0sBinary", K0S);
      transcripts.push(result.output);
      expect(result.status).not.toBe(0);
      expect(result.output).toContain(`k0s-platform:k0sBinary: "${tampered}" has sha256`);
      expect(result.output).toContain(`but k0sSha256 pins ${pin}: refusing to install it`);
      expect(fs.existsSync(path.join(droplet.rootfs, "usr/local/bin/k0s"))).toBe(false);
      expect(fs.existsSync(path.join(droplet.rootfs, "etc/systemd/system/k0scontroller.service"))).toBe(false);
    },
    120_000,
  );

  step(
    "brings up k0s although sshd starts 30 seconds late: the dial retries, then succeeds",
    async () => {
      const started = Date.now();
      // Engine and provider logs on stderr, so that the secrecy check reads them too. Verbosity 5 is
      // the most that keeps secrets out: from 7 on, Pulumi's engine prints resource inputs, secret
      // values included (measured with v3.248.0: "Planner decided to create ... inputs=map[...]").
      const running = cli.runAsync(["up", "--stack", STACK, "--yes", "--skip-preview", "--logtostderr", "-v=5", "--logflow"]);
      await new Promise((resolve) => setTimeout(resolve, 30_000));
      droplet.startSsh();
      const output = expectOk(await running);
      console.log(`pulumi up, cold, to a Ready cluster: ${((Date.now() - started) / 1000).toFixed(0)} s (sshd started after 30 s)`);
      expect(output).toMatch(/Dial \d+\/30 failed: retrying/);
    },
    900_000,
  );

  step("runs the pinned k0s, whose sha256 is the pin, and leaves no upload behind", () => {
    expect(droplet.exec("/usr/local/bin/k0s", "version").trim()).toBe(K0S_VERSION);
    expect(droplet.exec("sha256sum", "/usr/local/bin/k0s").split(" ")[0]).toBe(pin);
    expect(fs.existsSync(path.join(droplet.rootfs, K0S_UPLOAD_PATH))).toBe(false);
    expect(droplet.exec("systemctl", "is-enabled", "k0scontroller").trim()).toBe("enabled");
  });

  step("the host itself refuses a tampered upload: the installed k0s and its service stay as they were", () => {
    const startedAt = k0sStartedAt();
    fs.copyFileSync(path.join(droplet.dir, "k0s-tampered"), path.join(droplet.rootfs, K0S_UPLOAD_PATH));
    // What the program runs over SSH, here against a binary an attacker swapped in transit.
    const script = installK0sScript({ version: "v1.35.5+k0s.0", sha256: pin, uploaded: true });
    let refusal = "";
    try {
      droplet.exec("bash", "-c", script);
    } catch (error) {
      refusal = (error as Error).message;
    }
    expect(refusal).toMatch(/refusing to install k0s v1\.35\.5\+k0s\.0: its sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}/);
    expect(droplet.exec("sha256sum", "/usr/local/bin/k0s").split(" ")[0]).toBe(pin);
    expect(k0sStartedAt()).toBe(startedAt);
    expect(fs.existsSync(path.join(droplet.rootfs, K0S_UPLOAD_PATH))).toBe(false);
  });

  step("serves the API with a certificate for the address used; the kubeconfig output is a secret pointing at it", () => {
    expect(apiCertificateSans()).toContain(`IP Address:${DROPLET_ADDRESS}`);
    expect(cli.pulumi("stack", "output", "kubeconfig", "--stack", STACK).trim()).toBe("[secret]");
    expect(parse(fs.readFileSync(kubeconfigFile(), "utf8")).clusters[0].cluster.server).toBe(`https://${DROPLET_ADDRESS}:6443`);
  });

  step(
    "creates, through that kubeconfig, the environments and Flux, whose controllers run on the node kit's images",
    () => {
      expect(kubectl("get", "ns", "-l", "billing-group=enterprise", "-o", "jsonpath={.items[*].metadata.name}").split(" ").sort()).toEqual([
        "production",
        "staging",
      ]);
      for (const namespace of ["staging", "production"]) {
        expect(kubectl("get", "resourcequota,limitrange", "-n", namespace, "-o", "name").split("\n").filter(Boolean)).toHaveLength(2);
        expect(kubectl("get", "networkpolicies", "-n", namespace, "-o", "name").split("\n").filter(Boolean)).toHaveLength(3);
      }
      kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", "flux-system", "--timeout=300s");
      // What the remote repository's ACME ClusterIssuers substitute for ${acme_email}.
      expect(kubectl("get", "configmap", CLUSTER_SETTINGS_NAME, "-n", "flux-system", "-o", `jsonpath={.data.${ACME_EMAIL_VARIABLE}}`)).toBe(
        ACME_EMAIL,
      );
    },
    400_000,
  );

  step(
    "changes nothing on a second up, and opens no SSH session",
    () => {
      const sessions = droplet.sshSessions();
      const started = Date.now();
      up();
      console.log(`second pulumi up: ${((Date.now() - started) / 1000).toFixed(1)} s, ${droplet.sshSessions() - sessions} SSH sessions`);
      expect(Object.keys(cli.lastChanges(STACK))).toEqual(["same"]);
      expect(droplet.sshSessions()).toBe(sessions);
    },
    300_000,
  );

  step(
    "re-applies a changed k0s config (one more SAN) in place: same host, k0s restarted, objects kept",
    () => {
      const bootId = droplet.exec("cat", "/proc/sys/kernel/random/boot_id");
      const startedAt = k0sStartedAt();
      const namespaces = uidsOf("namespaces");
      const policies = uidsOf("networkpolicies");
      cli.pulumi("config", "set", "--stack", STACK, "--path", "apiSans[0]", "k0s.rehearsal.example");
      up();
      expect(droplet.exec("cat", "/proc/sys/kernel/random/boot_id")).toBe(bootId);
      expect(k0sStartedAt()).not.toBe(startedAt);
      expect(apiCertificateSans()).toContain("DNS:k0s.rehearsal.example");
      expect(uidsOf("namespaces")).toBe(namespaces);
      expect(uidsOf("networkpolicies")).toBe(policies);
    },
    600_000,
  );

  step(
    "survives a reboot: k0s comes back by itself and preview expects no changes",
    async () => {
      await droplet.reboot();
      const [command, ...rest] = droplet.internet.wrap([
        "sh",
        "-c",
        `until ${path.join(TOOLCHAIN_BIN, "k0s")} kubectl --kubeconfig=${kubeconfigFile()} get --raw=/readyz >/dev/null 2>&1; do sleep 2; done`,
      ]);
      run("timeout", ["300", command, ...rest]);
      kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=300s");
      expectOk(cli.run(["preview", "--stack", STACK, "--expect-no-changes"]));
    },
    600_000,
  );
});

describe("the private key", () => {
  step("appears in plaintext nowhere: stack export, engine and provider logs, outputs, the host's files", () => {
    const keyLines = privateKey.split("\n").filter((line) => line.length > 40);
    const exported = cli.pulumi("stack", "export", "--stack", STACK);
    const outputs = cli.pulumi("stack", "output", "--json", "--stack", STACK);
    const state = fs.readdirSync(cli.stateDir, { recursive: true, encoding: "utf8" }).map((file) => path.join(cli.stateDir, file));
    const stateText = state.filter((file) => fs.statSync(file).isFile()).map((file) => fs.readFileSync(file, "utf8"));
    // grep exits 1 when it finds nothing, which is the answer wanted here.
    const hostFiles = run("sh", [
      "-c",
      'grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e "$1" "$2" || true',
      "grep",
      keyLines[1],
      droplet.rootfs,
    ]).trim();
    for (const [where, text] of [
      ["stack export", exported],
      ["outputs", outputs],
      ["raw state", stateText.join("\n")],
      ["CLI, engine and provider logs", transcripts.join("\n")],
    ]) {
      for (const line of keyLines) expect(text.includes(line), `${where} holds the private key`).toBe(false);
    }
    expect(hostFiles).toBe("");
  });
});

describe("failures that must end in bounded time", () => {
  step(
    "an unreachable host fails with a clear error",
    () => {
      writeStackFile("ghost", { sshHost: "10.214.0.99", sshHostKey: droplet.hostKey(), sshDialAttempts: 5 });
      cli.pulumi("stack", "init", "ghost");
      expectOk(cli.run(["config", "set", "--secret", "--stack", "ghost", "sshPrivateKey"], { input: privateKey }));
      const started = Date.now();
      const result = cli.run(["up", "--stack", "ghost", "--yes", "--skip-preview"]);
      const seconds = (Date.now() - started) / 1000;
      console.log(`unreachable host: failed after ${seconds.toFixed(0)} s with 5 dial attempts`);
      expect(result.status).not.toBe(0);
      expect(result.output).toMatch(/after 5 failed attempts: dial tcp 10\.214\.0\.99:22/);
      expect(seconds).toBeLessThan(180);
    },
    300_000,
  );

  step(
    "a changed host key fails with a clear error",
    () => {
      const pinned = droplet.hostKey();
      droplet.exec("sh", "-c", "rm /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh");
      expect(droplet.hostKey()).not.toBe(pinned);
      // The ghost stack again, now at the droplet's address with the key pinned before the change.
      cli.pulumi("config", "set", "--stack", "ghost", "sshHost", DROPLET_ADDRESS);
      cli.pulumi("config", "set", "--stack", "ghost", "sshHostKey", pinned);
      const started = Date.now();
      const result = cli.run(["up", "--stack", "ghost", "--yes", "--skip-preview"]);
      const seconds = (Date.now() - started) / 1000;
      console.log(`changed host key: failed after ${seconds.toFixed(0)} s with 5 dial attempts`);
      expect(result.status).not.toBe(0);
      expect(result.output).toMatch(/host key mismatch/);
      expect(seconds).toBeLessThan(120);
      cli.pulumi("stack", "rm", "--stack", "ghost", "--yes", "--force");
    },
    300_000,
  );
});

describe("teardown", () => {
  step(
    "pulumi destroy removes what the program made on the cluster and leaves the host running",
    () => {
      // Production is protected: lift it first, as the README says.
      cli.pulumi("config", "set", "--stack", STACK, "--path", "environments.production.protect", "false");
      up();
      expectOk(cli.run(["destroy", "--stack", STACK, "--yes", "--skip-preview"]));
      const namespaces = kubectlWithAdmin("get", "ns", "-o", "jsonpath={.items[*].metadata.name}").split(" ");
      for (const gone of ["staging", "production", "flux-system"]) expect(namespaces).not.toContain(gone);
      expect(droplet.exec("systemctl", "is-active", "k0scontroller").trim()).toBe("active");
    },
    600_000,
  );

  step(
    "stopping the rehearsal leaves no process, mount, network namespace, cgroup or iptables rule behind",
    async () => {
      stopped = true;
      const dir = droplet.dir;
      await droplet.stop();
      expect(fs.existsSync(dir)).toBe(false);
      expect(leftoversSince(before)).toEqual({ processes: [], mounts: [], networkNamespaces: [], cgroups: [], iptables: [] });
    },
    120_000,
  );
});

/** After destroy the stack has no kubeconfig output: ask k0s on the host, as an admin would. */
function kubectlWithAdmin(...args: string[]): string {
  return droplet.exec("k0s", "kubectl", ...args);
}

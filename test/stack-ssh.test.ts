import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { mockCloud } from "./lib/cloud";
import { expectExplicitProvider, graphOf, inputsOf } from "./lib/graph";
import { ProgramRun, runProgram, withFluxFixture } from "./lib/program";
import { seedStackConfig } from "./lib/seedStacks";
import { isSecret, promiseOf, reveal, type Registration } from "./mocks";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPWbQ2mMtVr3fT0Gk6pWv0cZJ0f9c1y7pS2b7oZ2q8xK";
let run: ProgramRun;
let bundles: string;
let binary: string;
let pin: string;
let config: Record<string, unknown>;

// The program refuses to run with an SSH agent in reach unless sshUseAgent is true (sshAgentErrors):
// a developer's shell must not decide these tests.
const agentSocket = process.env.SSH_AUTH_SOCK;
beforeAll(() => {
  delete process.env.SSH_AUTH_SOCK;
});
afterAll(() => {
  if (agentSocket !== undefined) process.env.SSH_AUTH_SOCK = agentSocket;
});

beforeAll(async () => {
  // An air-gapped server: the operator's k0s binary and image bundles are uploaded, not downloaded.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-ssh-"));
  binary = path.join(dir, "k0s");
  fs.writeFileSync(binary, "k0s binary stand-in for the mock rung");
  pin = createHash("sha256").update(fs.readFileSync(binary)).digest("hex");
  bundles = path.join(dir, "images");
  fs.mkdirSync(bundles);
  fs.writeFileSync(path.join(bundles, "pause.tar"), "bundle");
  // The remote stack's environments on a server the user already has.
  const { environments, flux } = seedStackConfig("remote");
  config = {
    target: "ssh",
    sshHost: "198.51.100.7",
    sshPort: 2222,
    sshUser: "root",
    sshHostKey: HOST_KEY,
    sshPrivateKey: PRIVATE_KEY,
    acmeEmail: "platform@acme-consulting.eu",
    adminCidrs: ["203.0.113.0/24", "2001:db8:1::/48"],
    k0sSha256: pin,
    k0sBinary: binary,
    k0sAirgapImages: bundles,
    apiSans: ["k0s.example.com"],
    environments,
    flux,
  };
  run = await runProgram("edge", withFluxFixture(config), mockCloud(), ["sshPrivateKey"]);
});

const STEP = { command: "command:remote:Command", copy: "command:remote:CopyToRemote" };

describe("ssh target (k0s on a server the user already has)", () => {
  it("declares no cloud resources, only the SSH steps, then Flux and the environments", () => {
    const graph = graphOf(run);
    expect(graph.filter((line) => line.startsWith("digitalocean:"))).toEqual([]);
    expect(graph.filter((line) => /command:remote|K0sOverSsh|ssh-k0s-provider/.test(line))).toEqual(
      [
        "k0s-platform:index:K0sOverSsh ssh-k0s",
        `${STEP.command} ssh-k0s-wait-for-host`,
        `${STEP.command} ssh-k0s-host-firewall`,
        `${STEP.copy} ssh-k0s-k0s-binary`,
        `${STEP.copy} ssh-k0s-airgap-images`,
        `${STEP.copy} ssh-k0s-k0s-config`,
        `${STEP.command} ssh-k0s-install-k0s`,
        `${STEP.command} ssh-k0s-admin-kubeconfig`,
        "pulumi:providers:kubernetes ssh-k0s-provider",
      ].sort(),
    );
  });

  it("dials the server as configured, refusing any host key but the pinned one, with the private key secret", () => {
    for (const [type, name] of [
      [STEP.command, "ssh-k0s-wait-for-host"],
      [STEP.copy, "ssh-k0s-k0s-binary"],
      [STEP.command, "ssh-k0s-install-k0s"],
    ]) {
      const connection = run.find(type, name).inputs.connection as Record<string, unknown>;
      const plain = isSecret(connection) ? (connection as { value: Record<string, unknown> }).value : connection;
      expect(plain, name).toMatchObject({ host: "198.51.100.7", port: 2222, user: "root", hostKey: HOST_KEY, dialErrorLimit: 30 });
      expect(isSecret(connection) || isSecret(plain.privateKey), name).toBe(true);
    }
  });

  it("uploads the operator's k0s binary and image bundles, and installs only what matches the pin", async () => {
    // Raw inputs: assets keep their promises there.
    const upload = run.find(STEP.copy, "ssh-k0s-k0s-binary").inputs as { remotePath: string; source: pulumi.asset.FileAsset };
    expect(upload.remotePath).toBe("/var/lib/k0s-platform/upload/k0s");
    expect(await upload.source.path).toBe(binary);
    const images = run.find(STEP.copy, "ssh-k0s-airgap-images").inputs as { remotePath: string; source: pulumi.asset.FileArchive };
    expect(images.remotePath).toBe("/var/lib/k0s-platform/upload/images");
    expect(await images.source.path).toBe(`${bundles}/`);
    const install = inputsOf(run, STEP.command, "ssh-k0s-install-k0s") as { create: string; triggers: string[] };
    expect(install.create).toContain("new=/var/lib/k0s-platform/upload/k0s");
    expect(install.create).toContain(`expected='${pin}'`);
    expect(install.create).toContain("cp -R --preserve=timestamps /var/lib/k0s-platform/upload/images/. /var/lib/k0s/images/");
    // A changed bundle is uploaded and copied into k0s's images directory again.
    expect(install.triggers).toEqual(
      expect.arrayContaining(["v1.36.3+k0s.2", pin, inputsOf(run, STEP.copy, "ssh-k0s-airgap-images").triggers[1]]),
    );
    const dependencies = run.find(STEP.command, "ssh-k0s-install-k0s").options.dependencies;
    for (const name of ["ssh-k0s-k0s-binary", "ssh-k0s-airgap-images", "ssh-k0s-k0s-config"]) {
      expect(dependencies).toContain(run.urns.get(run.find(STEP.copy, name).id));
    }
  });

  it("writes a k0s config whose certificate covers the server's address and the extra SANs", async () => {
    const copy = run.find(STEP.copy, "ssh-k0s-k0s-config").inputs as { source: pulumi.asset.StringAsset };
    expect(parse(await copy.source.text).spec.api.sans).toEqual(["198.51.100.7", "k0s.example.com"]);
  });

  it("keeps a host firewall for the API and the kubelet, admins only, in place before k0s is installed", () => {
    const firewall = inputsOf(run, STEP.command, "ssh-k0s-host-firewall") as { create: string; update: string; triggers: unknown[] };
    expect(firewall.update).toBe(firewall.create);
    expect(firewall.triggers).toEqual(["198.51.100.7"]);
    const rules = firewall.create.split("\n");
    for (const rule of [
      "-A K0S-PLATFORM-GUARD -i lo -j RETURN",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 6443 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 10250 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-ADMINS -s 10.244.0.0/16 -i kube-bridge -j RETURN",
      "-A K0S-PLATFORM-ADMINS -s 203.0.113.0/24 -j RETURN",
      "-A K0S-PLATFORM-ADMINS -s 2001:db8:1::/48 -j RETURN",
      "-A K0S-PLATFORM-ADMINS -j DROP",
    ]) {
      expect(rules, rule).toContain(rule);
    }
    // SSH stays the server's own business on this target: no rule names port 22.
    expect(firewall.create).not.toContain("--dport 22 ");
    expect(firewall.create).toContain("systemctl enable k0s-platform-host-firewall.service");
    const install = run.find(STEP.command, "ssh-k0s-install-k0s");
    expect(install.options.dependencies).toContain(run.urns.get(run.find(STEP.command, "ssh-k0s-host-firewall").id));
    // No droplet key to keep on a server the user already has.
    expect(run.ofType(STEP.command).map((entry) => entry.name)).not.toContain("ssh-k0s-authorized-keys");
  });

  it("exports a secret kubeconfig pointing at the server, through which every object is applied", async () => {
    const { value, secret } = await promiseOf(run.outputs.kubeconfig as pulumi.Output<string>);
    expect(secret).toBe(true);
    expect(parse(value).clusters[0].cluster.server).toBe("https://198.51.100.7:6443");
    expect(run.outputs.publicIp).toBeUndefined();
    expectExplicitProvider(run, "ssh-k0s-provider");
  });
});

/**
 * What only the command provider and the engine decide (dialling, host-key checks, whether a step
 * runs at all) cannot run on the SSH-host rung, which runs the steps with OpenSSH instead
 * (e2e/ssh/k0s.ssh.ts): it is asserted here on the inputs the provider acts on.
 */
describe("what the command provider decides, from the inputs the program gives it", () => {
  const sshSteps = (programRun: ProgramRun) =>
    programRun.registrations.filter((entry) => entry.type === STEP.command || entry.type === STEP.copy);
  const again = (changes: Record<string, unknown>) =>
    runProgram("edge", withFluxFixture({ ...config, ...changes }), mockCloud(), ["sshPrivateKey"]);
  /** A step's inputs as the engine compares them: secrets unwrapped, assets by their content. */
  const comparable = async (entry: Registration) => {
    const { source, ...rest } = entry.inputs as { source?: { text?: Promise<string>; path?: Promise<string> } };
    return { ...(reveal(rest) as object), source: source && { text: await source.text, path: await source.path } };
  };
  const inputsByStep = async (programRun: ProgramRun) =>
    Object.fromEntries(await Promise.all(sshSteps(programRun).map(async (entry) => [entry.name, await comparable(entry)] as const)));

  it("retries the dial: every step allows sshDialAttempts dials, each bounded", async () => {
    const retried = await again({ sshDialAttempts: 5 });
    expect(sshSteps(retried)).toHaveLength(7);
    for (const entry of sshSteps(retried)) {
      expect(reveal(entry.inputs.connection), entry.name).toMatchObject({ dialErrorLimit: 5, perDialTimeout: 10 });
    }
  });

  it("refuses any host key but the pinned one: every step pins it, none dials unpinned", () => {
    expect(sshSteps(run)).toHaveLength(7);
    for (const entry of sshSteps(run)) {
      expect(reveal(entry.inputs.connection), entry.name).toMatchObject({
        host: "198.51.100.7",
        port: 2222,
        user: "root",
        hostKey: HOST_KEY,
      });
    }
  });

  it("logs in as a non-root sshUser and runs every step that needs root through sudo, uploading into a directory that user owns", async () => {
    const ops = await again({ sshUser: "ops" });
    const commands = ops.registrations.filter((entry) => entry.type === STEP.command);
    expect(commands.map((entry) => entry.name).sort()).toEqual([
      "ssh-k0s-admin-kubeconfig",
      "ssh-k0s-host-firewall",
      "ssh-k0s-install-k0s",
      "ssh-k0s-wait-for-host",
    ]);
    for (const entry of commands) {
      expect(reveal(entry.inputs.connection), entry.name).toMatchObject({ user: "ops" });
      expect(String(reveal(entry.inputs.create)), entry.name).toMatch(/^set -euo pipefail\nif ! sudo -n true 2>\/dev\/null; then\n/);
    }
    expect(String(reveal(inputsOf(ops, STEP.command, "ssh-k0s-wait-for-host").create))).toContain(
      "chown -R ops /var/lib/k0s-platform/upload",
    );
    for (const entry of ops.registrations.filter((registration) => registration.type === STEP.copy)) {
      expect(String(entry.inputs.remotePath), entry.name).toMatch(/^\/var\/lib\/k0s-platform\/upload\//);
    }
  });

  it("opens no SSH session on an unchanged second up: every step's inputs are the same again, so the engine runs none", async () => {
    const second = await again({});
    expect(await inputsByStep(second)).toEqual(await inputsByStep(run));
  });

  it("re-runs only what a change reaches: a new SAN rewrites the config and re-installs, without waiting for the host or uploading again", async () => {
    const before = await inputsByStep(run);
    const after = await inputsByStep(await again({ apiSans: ["k0s.example.com", "k0s2.example.com"] }));
    const changed = Object.keys(before).filter((name) => JSON.stringify(before[name]) !== JSON.stringify(after[name]));
    expect(changed.sort()).toEqual(["ssh-k0s-install-k0s", "ssh-k0s-k0s-config"]);
  });

  it("re-runs only the firewall when the admin networks change", async () => {
    const before = await inputsByStep(run);
    const moved = await again({ adminCidrs: ["198.51.100.0/24"] });
    const after = await inputsByStep(moved);
    const changed = Object.keys(before).filter((name) => JSON.stringify(before[name]) !== JSON.stringify(after[name]));
    expect(changed).toEqual(["ssh-k0s-host-firewall"]);
    const firewall = inputsOf(moved, "command:remote:Command", "ssh-k0s-host-firewall").create as string;
    expect(firewall).toContain("-A K0S-PLATFORM-ADMINS -s 198.51.100.0/24 -j RETURN");
    expect(firewall).not.toContain("203.0.113.0/24");
  });

  it("never offers an SSH agent unless sshUseAgent asks for one: with SSH_AUTH_SOCK set, the run is refused", async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = "/tmp/agent.sock";
    try {
      await expect(again({})).rejects.toThrow("k0s-platform:sshUseAgent is false, but SSH_AUTH_SOCK is set");
      // Positive control: asked for, the agent is used (the connection names no key and no socket,
      // so the provider takes SSH_AUTH_SOCK).
      const agent = await runProgram("edge", withFluxFixture({ ...config, sshPrivateKey: "", sshUseAgent: true }), mockCloud());
      for (const entry of sshSteps(agent)) {
        const connection = reveal(entry.inputs.connection) as Record<string, unknown>;
        expect(connection.privateKey, entry.name).toBeUndefined();
        expect(connection.agentSocketPath, entry.name).toBeUndefined();
      }
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it("refuses a private key stored in plain text, and accepts the same key stored as a secret", async () => {
    await expect(runProgram("edge", withFluxFixture(config), mockCloud())).rejects.toThrow(
      "k0s-platform:sshPrivateKey is stored in plain text: set it again with `pulumi config set --secret sshPrivateKey",
    );
    await expect(runProgram("edge", withFluxFixture(config), mockCloud(), ["sshPrivateKey"])).resolves.toBeDefined();
  });
});

/**
 * The droplet's SSH host key, known before it is trusted: DigitalOceanHost generates it and puts it
 * into the droplet's first boot, and K0sOverSsh pins it on every connection. The two components are
 * wired here as index.ts wires them (`hostKey: droplet.hostPublicKey`), under the unit tests' mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import type { K0sInstall, SshAccess } from "../components/config";
import { mockCloud } from "./lib/cloud";
import { installMocks, isSecret, promiseOf, type Registration, reveal } from "./mocks";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme";
const OLD_DROPLET_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPWbQ2mMtVr3fT0Gk6pWv0cZJ0f9c1y7pS2b7oZ2q8xK";
const SSH_STEPS = ["command:remote:Command", "command:remote:CopyToRemote"];

interface Wiring {
  /** Whether K0sOverSsh is handed the droplet's generated key, as index.ts must do. */
  readonly pinGenerated: boolean;
  /** sshHostKey from the stack config: an explicit pin for a droplet created before generation. */
  readonly configuredHostKey?: string;
}

async function build(wiring: Wiring): Promise<{ registrations: Registration[]; hostPublicKey: string }> {
  vi.resetModules();
  const registrations = await installMocks("remote", mockCloud());
  const { DigitalOceanHost } = await import("../components/digitalOceanHost");
  const { K0sOverSsh } = await import("../components/k0sOverSsh");
  const droplet = new DigitalOceanHost("remote", {
    cloudName: "k0s-platform-remote",
    region: "fra1",
    size: "s-2vcpu-4gb",
    image: "debian-12-x64",
    adminCidrs: ["203.0.113.7/32"],
    sshPublicKey: PUBLIC_KEY,
  });
  const ssh: SshAccess = {
    port: 22,
    user: "root",
    privateKey: pulumi.secret(PRIVATE_KEY),
    useAgent: false,
    hostKey: wiring.configuredHostKey,
    authorizedKey: PUBLIC_KEY,
    dialAttempts: 30,
  };
  const k0s: K0sInstall = { version: "v1.35.4+k0s.0", versionPinned: true, extraSans: [], spec: {}, adminCidrs: ["203.0.113.7/32"] };
  const cluster = new K0sOverSsh("remote-k0s", {
    host: droplet.publicIp,
    kubeconfigName: "k0s-platform-remote",
    ssh,
    k0s,
    machineId: droplet.dropletId,
    after: [droplet],
    hostKey: wiring.pinGenerated ? droplet.hostPublicKey : undefined,
  });
  await promiseOf(cluster.kubeconfig);
  const { value: hostPublicKey } = await promiseOf(droplet.hostPublicKey);
  // Steps wait on other resources' outputs: let the registrations settle.
  for (let last = -1; last !== registrations.length;) {
    last = registrations.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { registrations, hostPublicKey };
}

const sshSteps = (registrations: Registration[]) => registrations.filter((entry) => SSH_STEPS.includes(entry.type));
const pinnedKeys = (registrations: Registration[]) =>
  sshSteps(registrations).map((entry) => (reveal(entry.inputs.connection) as { hostKey?: string }).hostKey);
const cloudConfigOf = (registrations: Registration[]) => {
  const droplet = registrations.find((entry) => entry.type === "digitalocean:index/droplet:Droplet")!;
  expect(isSecret(droplet.inputs.userData)).toBe(true);
  return parse(reveal(droplet.inputs.userData) as string) as { ssh_keys: { ed25519_private: string; ed25519_public: string } };
};

describe("the droplet's host key, known before it is trusted", () => {
  it("pins the key the droplet boots with on every SSH step, from the first dial on", async () => {
    const { registrations, hostPublicKey } = await build({ pinGenerated: true });
    expect(
      sshSteps(registrations)
        .map((entry) => entry.name)
        .sort(),
    ).toEqual([
      "remote-k0s-admin-kubeconfig",
      "remote-k0s-authorized-keys",
      "remote-k0s-host-firewall",
      "remote-k0s-install-k0s",
      "remote-k0s-k0s-config",
      "remote-k0s-wait-for-host",
    ]);
    expect(new Set(pinnedKeys(registrations))).toEqual(new Set([hostPublicKey]));
    expect(cloudConfigOf(registrations).ssh_keys.ed25519_public).toBe(hostPublicKey);
  });

  it("boots with a private key that OpenSSH reads, and whose public half is exactly the pinned key", async () => {
    const { registrations, hostPublicKey } = await build({ pinGenerated: true });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-key-"));
    try {
      const file = path.join(dir, "ssh_host_ed25519_key");
      fs.writeFileSync(file, cloudConfigOf(registrations).ssh_keys.ed25519_private, { mode: 0o600 });
      const derived = execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" }).trim();
      expect(derived.split(" ").slice(0, 2).join(" ")).toBe(hostPublicKey);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it("pins an explicitly configured sshHostKey instead (a droplet from before the program generated keys)", async () => {
    const { registrations, hostPublicKey } = await build({ pinGenerated: true, configuredHostKey: OLD_DROPLET_KEY });
    expect(hostPublicKey).not.toBe(OLD_DROPLET_KEY);
    expect(new Set(pinnedKeys(registrations))).toEqual(new Set([OLD_DROPLET_KEY]));
  });

  it("dials unpinned without the wiring (the negative control: the wiring is what pins)", async () => {
    const { registrations } = await build({ pinGenerated: false });
    expect(new Set(pinnedKeys(registrations))).toEqual(new Set([undefined]));
  });

  it("proposes a different key on every run, so only the keeper's ignoreChanges keeps the droplet's key stable", async () => {
    const { generateSshKeyPair } = await import("../components/lib/sshKeys");
    expect(generateSshKeyPair("a").publicKey).not.toBe(generateSshKeyPair("a").publicKey);
    const { registrations } = await build({ pinGenerated: true });
    const keeper = registrations.find((entry) => entry.type === "command:local:Command")!;
    expect(keeper.options.ignoreChanges).toEqual(["triggers"]);
  });
});

import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { isSecret, promiseOf, reveal } from "./mocks";
import { mockCloud } from "./lib/cloud";
import {
  expectEnvironment,
  expectExplicitProvider,
  expectValidAgainstSchemas,
  graphOf,
  inputsOf,
  kubernetesObjects,
  TYPES,
} from "./lib/graph";
import {
  ACME_EMAIL_VARIABLE,
  ALERT_RECEIVER_VARIABLE,
  ALERT_WEBHOOK_URL_VARIABLE,
  CLUSTER_SECRETS_NAME,
  CLUSTER_SETTINGS_NAME,
} from "../components/lib/flux";
import { admitsIngress } from "./lib/networkPolicy";
import { ProgramRun, runProgram, withFluxFixture } from "./lib/program";
import { seedStackConfig } from "./lib/seedStacks";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme";
const ACME_EMAIL = "platform@acme-consulting.eu";
const ADMIN = ["203.0.113.7/32", "2001:db8::/64"];
let run: ProgramRun;
// What the README tells a user to set before the first `pulumi up --stack remote`.
const userSettings = {
  adminCidrs: ADMIN,
  sshPublicKey: PUBLIC_KEY,
  sshPrivateKey: PRIVATE_KEY,
  domain: "example.com",
  acmeEmail: ACME_EMAIL,
};

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
  const config = seedStackConfig("remote");
  run = await runProgram("remote", withFluxFixture({ ...config, ...userSettings }), mockCloud(), ["sshPrivateKey"]);
});

const DO = {
  droplet: "digitalocean:index/droplet:Droplet",
  firewall: "digitalocean:index/firewall:Firewall",
  record: "digitalocean:index/dnsRecord:DnsRecord",
};

describe("remote stack (Pulumi.remote.yaml)", () => {
  it("declares the droplet, its address, firewall, DNS and the SSH steps, then Flux and both environments", () => {
    const graph = graphOf(run);
    const remoteOnly = graph.filter((line) => /digitalocean:|command:|DigitalOceanHost|K0sOverSsh|remote-k0s-provider/.test(line));
    expect(remoteOnly).toEqual(
      [
        "k0s-platform:index:DigitalOceanHost remote",
        "k0s-platform:index:K0sOverSsh remote-k0s",
        "digitalocean:index/sshKey:SshKey remote-ssh-key",
        `${DO.droplet} remote-droplet`,
        "digitalocean:index/reservedIp:ReservedIp remote-ip",
        "digitalocean:index/reservedIpAssignment:ReservedIpAssignment remote-ip-assignment",
        `${DO.firewall} remote-firewall`,
        `${DO.record} remote-dns-wildcard`,
        `${DO.record} remote-dns-staging-wildcard`,
        "command:local:Command remote-host-key",
        "command:remote:Command remote-k0s-wait-for-host",
        "command:remote:Command remote-k0s-host-firewall",
        "command:remote:Command remote-k0s-authorized-keys",
        "command:remote:CopyToRemote remote-k0s-k0s-config",
        "command:remote:Command remote-k0s-install-k0s",
        "command:remote:Command remote-k0s-admin-kubeconfig",
        "pulumi:providers:kubernetes remote-k0s-provider",
      ].sort(),
    );
    expect(graph.filter((line) => line.startsWith(`${TYPES.environment} `))).toEqual([
      `${TYPES.environment} production`,
      `${TYPES.environment} staging`,
    ]);
    expect(graph).not.toContain("k0s-platform:index:LocalCluster local");
  });

  it("opens SSH and the API only to the admin networks, web traffic to all, and never the kubelet", () => {
    const everywhere = ["0.0.0.0/0", "::/0"];
    const firewall = inputsOf(run, DO.firewall, "remote-firewall");
    expect(firewall.inboundRules.map((rule: { portRange?: string }) => rule.portRange)).not.toContain("10250");
    expect(firewall).toMatchObject({
      tags: ["k0s-platform-remote-remote"],
      inboundRules: [
        { protocol: "tcp", portRange: "22", sourceAddresses: ADMIN },
        { protocol: "tcp", portRange: "6443", sourceAddresses: ADMIN },
        { protocol: "tcp", portRange: "80", sourceAddresses: everywhere },
        { protocol: "tcp", portRange: "443", sourceAddresses: everywhere },
        { protocol: "icmp", sourceAddresses: everywhere },
      ],
      outboundRules: [
        { protocol: "tcp", portRange: "1-65535", destinationAddresses: everywhere },
        { protocol: "udp", portRange: "1-65535", destinationAddresses: everywhere },
        { protocol: "icmp", destinationAddresses: everywhere },
      ],
    });
  });

  it("covers the droplet with the cloud firewall from its creation: created first, applied by the droplet's tag", () => {
    const droplet = run.find(DO.droplet, "remote-droplet");
    expect(droplet.options.dependencies).toContain(run.urns.get(run.find(DO.firewall, "remote-firewall").id));
    expect(inputsOf(run, DO.droplet, "remote-droplet").tags).toEqual(["k0s", "k0s-platform-remote", "k0s-platform-remote-remote"]);
    expect(inputsOf(run, DO.firewall, "remote-firewall").dropletIds).toBeUndefined();
  });

  it("boots closed: cloud-init's bootcmd (before sshd) lets only the admin networks reach SSH, the API and the kubelet", () => {
    const userData = run.find(DO.droplet, "remote-droplet").inputs.userData;
    expect(isSecret(userData)).toBe(true);
    const text = reveal(userData) as string;
    expect(text.split("\n")[0]).toBe("#cloud-config");
    const cloudConfig = parse(text);
    expect(cloudConfig.bootcmd).toHaveLength(1);
    const [shell, flag, script] = cloudConfig.bootcmd[0] as string[];
    expect([shell, flag]).toEqual(["bash", "-c"]);
    // Every boot until K0sOverSsh's persistent firewall (and its unit) exists.
    expect(script.split("\n")[0]).toBe("if [ ! -e /etc/systemd/system/k0s-platform-host-firewall.service ]; then");
    const rules = script.split("\n");
    for (const rule of [
      "-A K0S-PLATFORM-GUARD -i lo -j RETURN",
      "-A K0S-PLATFORM-GUARD -d 169.254.169.254/32 -j DROP",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 22 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 6443 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-GUARD -p tcp -m tcp --dport 10250 -j K0S-PLATFORM-ADMINS",
      "-A K0S-PLATFORM-ADMINS -s 203.0.113.7/32 -j RETURN",
      "-A K0S-PLATFORM-ADMINS -s 2001:db8::/64 -j RETURN",
      "-A K0S-PLATFORM-ADMINS -j DROP",
    ]) {
      expect(rules, rule).toContain(rule);
    }
    // No pods at first boot, so no pod network is let through.
    expect(script).not.toContain("kube-bridge");
  });

  it("gives the droplet the host key the program holds (secret in state), and no other", () => {
    const keeper = run.find("command:local:Command", "remote-host-key");
    expect(keeper.options).toMatchObject({ ignoreChanges: ["triggers"], additionalSecretOutputs: ["triggers"] });
    expect(keeper.inputs.create).toBeUndefined();
    // The private half makes the whole list secret, in the engine's inputs as in the state.
    expect(isSecret(keeper.inputs.triggers)).toBe(true);
    const [publicKey, privateKey] = reveal(keeper.inputs.triggers) as [string, string];
    expect(publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$/);
    expect(privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const cloudConfig = parse(reveal(run.find(DO.droplet, "remote-droplet").inputs.userData) as string);
    expect(cloudConfig).toMatchObject({
      ssh_deletekeys: true,
      ssh_genkeytypes: [],
      ssh_keys: { ed25519_public: publicKey, ed25519_private: privateKey },
    });
    expect(Object.keys(cloudConfig.ssh_keys)).toEqual(["ed25519_private", "ed25519_public"]);
  });

  it("pins the droplet's generated host key on every SSH step", () => {
    const [publicKey] = reveal(run.find("command:local:Command", "remote-host-key").inputs.triggers) as [string];
    const steps = run.registrations.filter((entry) => entry.type.startsWith("command:remote:"));
    expect(steps.length).toBeGreaterThan(0);
    for (const entry of steps) expect((reveal(entry.inputs.connection) as { hostKey?: string }).hostKey, entry.name).toBe(publicKey);
  });

  it("keeps the admin's key in root's authorized_keys over SSH, after cloud-init has written its own", () => {
    const step = run.find("command:remote:Command", "remote-k0s-authorized-keys");
    const { create, update } = inputsOf(run, "command:remote:Command", "remote-k0s-authorized-keys");
    expect(update).toBe(create);
    expect(create).toContain(`key='${PUBLIC_KEY}'`);
    expect(step.options.dependencies).toContain(run.urns.get(run.find("command:remote:Command", "remote-k0s-wait-for-host").id));
  });

  it("rotates sshPublicKey into authorized_keys without replacing the droplet", async () => {
    const rotated = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq3g2o0mZ8rE2oVJ7b0H8b1tD5cQy3wZ4n6xK9pL2Ra ops-2027@acme";
    const again = await runProgram(
      "remote",
      withFluxFixture({ ...seedStackConfig("remote"), ...userSettings, sshPublicKey: rotated }),
      mockCloud(),
      ["sshPrivateKey"],
    );
    const dropletInputs = (programRun: ProgramRun) =>
      reveal(programRun.find(DO.droplet, "remote-droplet").inputs) as Record<string, unknown>;
    const [before, after] = [dropletInputs(run), dropletInputs(again)];
    const changed = Object.keys({ ...before, ...after }).filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
    // Whatever differs on the droplet (a new host key proposal in its user data) is ignored, so the engine
    // plans no replacement; the key list the rotation touches is ignored too.
    expect(
      changed.every((key) => again.find(DO.droplet, "remote-droplet").options.ignoreChanges.includes(key)),
      changed.join(),
    ).toBe(true);
    expect(again.find(DO.droplet, "remote-droplet").options.ignoreChanges).toEqual(expect.arrayContaining(["sshKeys", "userData"]));
    expect(inputsOf(again, "digitalocean:index/sshKey:SshKey", "remote-ssh-key").publicKey).toBe(rotated);
    const script = inputsOf(again, "command:remote:Command", "remote-k0s-authorized-keys").create as string;
    expect(script).toContain(`key='${rotated}'`);
    expect(script).not.toContain(PUBLIC_KEY);
    // Positive control: the step's script is what changed, so the engine runs it.
    expect(script).not.toBe(inputsOf(run, "command:remote:Command", "remote-k0s-authorized-keys").create);
  });

  it("keeps the API and the kubelet for the admin networks with a persistent host firewall, before k0s", () => {
    const { create } = inputsOf(run, "command:remote:Command", "remote-k0s-host-firewall");
    expect(create).toContain("-A K0S-PLATFORM-ADMINS -s 203.0.113.7/32 -j RETURN");
    expect(create).toContain("-A K0S-PLATFORM-ADMINS -s 10.244.0.0/16 -i kube-bridge -j RETURN");
    expect(create).toContain("-A K0S-PLATFORM-GUARD -d 169.254.169.254/32 -j DROP");
    // SSH is left to the cloud firewall once the droplet is up, so a change of admin networks (made
    // through DigitalOcean's API) can never lock the operator out of the host.
    expect(create).not.toContain("--dport 22 ");
    const install = run.find("command:remote:Command", "remote-k0s-install-k0s");
    expect(install.options.dependencies).toContain(run.urns.get(run.find("command:remote:Command", "remote-k0s-host-firewall").id));
  });

  it("protects the droplet and its address, and never rebuilds it for a new key or image", () => {
    expect(run.find(DO.droplet, "remote-droplet").options).toMatchObject({
      protect: true,
      ignoreChanges: ["userData", "sshKeys", "image"],
    });
    expect(run.find("digitalocean:index/reservedIp:ReservedIp", "remote-ip").options.protect).toBe(true);
    expect(inputsOf(run, DO.droplet, "remote-droplet")).toMatchObject({ region: "fra1", size: "s-8vcpu-16gb", image: "debian-12-x64" });
  });

  it("points *.example.com and *.staging.example.com at the reserved IP", () => {
    for (const [role, name] of [
      ["wildcard", "*"],
      ["staging-wildcard", "*.staging"],
    ]) {
      expect(inputsOf(run, DO.record, `remote-dns-${role}`)).toMatchObject({
        domain: "example.com",
        type: "A",
        name,
        value: "203.0.113.10",
      });
    }
  });

  it("dials only once the droplet, its address and its firewall exist", () => {
    const waitForHost = run.find("command:remote:Command", "remote-k0s-wait-for-host");
    for (const [type, name] of [
      [DO.droplet, "remote-droplet"],
      ["digitalocean:index/reservedIpAssignment:ReservedIpAssignment", "remote-ip-assignment"],
      [DO.firewall, "remote-firewall"],
    ]) {
      expect(waitForHost.options.dependencies, name).toContain(run.urns.get(run.find(type, name).id));
    }
    expect(waitForHost.inputs.triggers).toEqual([expect.stringMatching(/droplet/)]);
  });

  it("runs the SSH steps in order, with the private key kept secret", () => {
    const step = (type: string, name: string) => run.find(type, name);
    const urn = (type: string, name: string) => run.urns.get(step(type, name).id)!;
    const order: [string, string][] = [
      ["command:remote:Command", "remote-k0s-wait-for-host"],
      ["command:remote:CopyToRemote", "remote-k0s-k0s-config"],
      ["command:remote:Command", "remote-k0s-install-k0s"],
      ["command:remote:Command", "remote-k0s-admin-kubeconfig"],
    ];
    order.slice(1).forEach(([type, name], index) => expect(step(type, name).options.dependencies).toContain(urn(...order[index])));
    for (const [type, name] of order) {
      const connection = step(type, name).inputs.connection as Record<string, unknown>;
      expect(isSecret(connection) || isSecret(connection.privateKey), name).toBe(true);
    }
    expect(step("command:remote:Command", "remote-k0s-admin-kubeconfig").options.additionalSecretOutputs).toContain("stdout");
    expect(step("command:remote:Command", "remote-k0s-admin-kubeconfig").inputs.logging).toBe("none");
  });

  it("writes a k0s config whose certificate covers the reserved IP and the API name", async () => {
    const copy = run.find("command:remote:CopyToRemote", "remote-k0s-k0s-config").inputs as {
      remotePath: string;
      source: pulumi.asset.StringAsset;
    };
    // Uploaded for the install step, which puts it at /etc/k0s/k0s.yaml once the binary checks out.
    expect(copy.remotePath).toBe("/var/lib/k0s-platform/upload/k0s.yaml");
    expect(parse(await copy.source.text).spec.api.sans).toEqual(["203.0.113.10", "api.example.com"]);
    expect(inputsOf(run, "command:remote:Command", "remote-k0s-install-k0s").triggers).toContain("v1.36.3+k0s.2");
  });

  it("exports a secret kubeconfig that points at the reserved IP", async () => {
    const { value, secret } = await promiseOf(run.outputs.kubeconfig as pulumi.Output<string>);
    expect(secret).toBe(true);
    expect(parse(value).clusters[0].cluster.server).toBe("https://203.0.113.10:6443");
    expect((await promiseOf(run.outputs.publicIp as pulumi.Output<string>)).value).toBe("203.0.113.10");
    expect(isSecret(run.find("pulumi:providers:kubernetes", "remote-k0s-provider").inputs.kubeconfig)).toBe(true);
  });

  it("applies every Kubernetes object through the droplet's provider", () => expectExplicitProvider(run, "remote-k0s-provider"));

  it("declares only objects the Kubernetes and Flux schemas accept", () => expectValidAgainstSchemas(run));

  it("syncs ./clusters/remote", () => {
    expect(inputsOf(run, TYPES.kustomization, "flux-sync").spec.path).toBe("./clusters/remote");
  });

  it("hands the stack's acmeEmail to the repository's ACME ClusterIssuers before Flux syncs", () => {
    const configMap = "kubernetes:core/v1:ConfigMap";
    expect(inputsOf(run, configMap, "flux-cluster-settings")).toMatchObject({
      metadata: { name: CLUSTER_SETTINGS_NAME, namespace: "flux-system" },
      data: { [ACME_EMAIL_VARIABLE]: ACME_EMAIL },
    });
    const settingsUrn = run.urns.get(run.find(configMap, "flux-cluster-settings").id);
    expect(run.find(TYPES.kustomization, "flux-sync").options.dependencies).toContain(settingsUrn);
  });

  it("gives staging and production the seed's quotas side by side, staging below production's priority", () => {
    const base = { client: "acme", billingGroup: "enterprise", isolated: true };
    expectEnvironment(run, {
      ...base,
      name: "staging",
      hosts: ["*.staging.example.com"],
      priority: -100,
      quota: { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", pods: "20" },
    });
    expectEnvironment(run, {
      ...base,
      name: "production",
      hosts: ["*.example.com"],
      quota: { "requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8", "limits.memory": "16Gi", pods: "50" },
    });
  });

  it("protects production and leaves staging deletable", () => {
    expect(run.find(TYPES.environment, "production").options.protect).toBe(true);
    expect(run.find(TYPES.namespace, "production-namespace").options.protect).toBe(true);
    expect(run.find(TYPES.namespace, "staging-namespace").options.protect).toBe(false);
  });

  it("keeps staging and production from reaching each other, while Traefik reaches both", () => {
    const policies = kubernetesObjects(run)
      .filter((entry) => entry.type === TYPES.policy)
      .map((entry) => entry.inputs as never);
    expect(admitsIngress(policies, { from: "staging", to: "production" })).toBe(false);
    expect(admitsIngress(policies, { from: "production", to: "staging" })).toBe(false);
    expect(admitsIngress(policies, { from: "traefik", to: "production" })).toBe(true);
    expect(admitsIngress(policies, { from: "staging", to: "staging" })).toBe(true);
  });
});

describe("upgrading k0s in place", () => {
  const INSTALL = "remote-k0s-install-k0s";
  /** The remote stack at `k0sVersion`, whose last `up` installed `installed` (its own output, read back). */
  const upgrade = (installed: string, k0sVersion?: string) =>
    runProgram(
      "remote",
      withFluxFixture({ ...seedStackConfig("remote"), ...userSettings, ...(k0sVersion === undefined ? {} : { k0sVersion }) }),
      mockCloud({ stackOutputs: { k0sVersion: installed } }),
      ["sshPrivateKey"],
    );

  it("exports the version the host reports, and reads it back from the stack's own state on the next run", async () => {
    expect((await promiseOf(run.outputs.k0sVersion as pulumi.Output<string>)).value).toBe("v1.36.3+k0s.2");
    expect(inputsOf(run, "pulumi:pulumi:StackReference", "installed-k0s").name).toBe("organization/k0s-platform/remote");
  });

  it("takes the next minor version (v1.35.4 to the default) and a later patch, and reruns the install step for them", async () => {
    for (const [installed, wanted] of [
      ["v1.35.4+k0s.0", "v1.36.3+k0s.2"],
      ["v1.36.3+k0s.2", "v1.36.4+k0s.0"],
    ] as const) {
      const later = await upgrade(installed, wanted);
      expect(inputsOf(later, "command:remote:Command", INSTALL).update).toContain(`want='${wanted}'`);
    }
  });

  it("never upgrades a running cluster to a new default unasked: an unpinned stack is told to choose", async () => {
    await expect(upgrade("v1.35.4+k0s.0")).rejects.toThrow(
      "k0s-platform:k0sVersion is not set, and the program's default (v1.36.3+k0s.2) differs from the v1.35.4+k0s.0 this stack runs: set it to choose",
    );
    for (const pinned of ["v1.35.4+k0s.0", "v1.36.3+k0s.2"]) {
      expect(inputsOf(await upgrade("v1.35.4+k0s.0", pinned), "command:remote:Command", INSTALL).update).toContain(`want='${pinned}'`);
    }
    // The stack at the default already: nothing to choose.
    expect(inputsOf(await upgrade("v1.36.3+k0s.2"), "command:remote:Command", INSTALL).update).toContain("want='v1.36.3+k0s.2'");
  });

  it.each([
    [
      "a skipped minor",
      "v1.34.2+k0s.0",
      "v1.36.3+k0s.2",
      "refusing to go from k0s v1.34.2+k0s.0 to v1.36.3+k0s.2: Kubernetes upgrades one minor version at a time; set k0sVersion to a v1.35.x release first",
    ],
    ["a downgrade", "v1.36.3+k0s.2", "v1.35.4+k0s.0", "refusing to go from k0s v1.36.3+k0s.2 to v1.35.4+k0s.0: that is a downgrade"],
  ])("refuses %s before any step runs, naming the key and the way forward", async (_case, installed, wanted, message) => {
    await expect(upgrade(installed, wanted)).rejects.toThrow(`k0s-platform:k0sVersion: ${message}`);
  });
});

describe("backups", () => {
  const withBackups = {
    ...seedStackConfig("remote"),
    ...userSettings,
    backup: { bucket: "acme-backups", accessKeyId: "DO00READMEKEY", retention: 7 },
    backupSecretAccessKey: "spaces-secret/with+base64=",
    dropletBackups: true,
  };

  it("schedules k0s backups to Spaces in the droplet's region once k0s runs, the credentials on stdin as a secret", async () => {
    const backedUp = await runProgram("remote", withFluxFixture(withBackups), mockCloud(), ["sshPrivateKey", "backupSecretAccessKey"]);
    const step = backedUp.find("command:remote:Command", "remote-k0s-backup-schedule");
    expect(step.options.dependencies).toContain(backedUp.urns.get(backedUp.find("command:remote:Command", "remote-k0s-install-k0s").id));
    expect(isSecret(step.inputs.stdin)).toBe(true);
    expect(reveal(step.inputs.stdin)).toBe(
      [
        "BACKUP_ENDPOINT='https://fra1.digitaloceanspaces.com'",
        "BACKUP_BUCKET='acme-backups'",
        "BACKUP_REGION='fra1'",
        "BACKUP_PREFIX='k0s-platform-remote'",
        "BACKUP_RETENTION='7'",
        "BACKUP_ACCESS_KEY_ID='DO00READMEKEY'",
        "BACKUP_SECRET_ACCESS_KEY='spaces-secret/with+base64='",
        "",
      ].join("\n"),
    );
    const create = reveal(step.inputs.create) as string;
    expect(create).toContain("OnCalendar=*-*-* 03:00:00");
    expect(create).not.toContain("spaces-secret");
    expect(inputsOf(backedUp, DO.droplet, "remote-droplet").backups).toBe(true);
  });

  it("declares no backup step and no droplet backups unless asked", () => {
    expect(run.ofType("command:remote:Command").map((entry) => entry.name)).not.toContain("remote-k0s-backup-schedule");
    expect(inputsOf(run, DO.droplet, "remote-droplet").backups).toBe(false);
  });

  it("refuses the backup secret stored in plain text", async () => {
    await expect(runProgram("remote", withFluxFixture(withBackups), mockCloud(), ["sshPrivateKey"])).rejects.toThrow(
      "k0s-platform:backupSecretAccessKey is stored in plain text",
    );
  });
});

describe("alerts to the stack's webhook", () => {
  const WEBHOOK = "https://hooks.slack.example/services/T000/B000/token-in-the-path";
  const alerting = { ...seedStackConfig("remote"), ...userSettings, alertWebhookUrl: WEBHOOK };

  it("hands the webhook to the repository's Alertmanager as a secret before Flux syncs, the receiver beside it", async () => {
    const alerted = await runProgram("remote", withFluxFixture(alerting), mockCloud(), ["sshPrivateKey", "alertWebhookUrl"]);
    const secret = alerted.find("kubernetes:core/v1:Secret", "flux-cluster-secrets");
    expect(secret.inputs.metadata).toMatchObject({ name: CLUSTER_SECRETS_NAME, namespace: "flux-system" });
    expect(isSecret(secret.inputs.stringData)).toBe(true);
    expect(reveal(secret.inputs.stringData)).toEqual({ [ALERT_WEBHOOK_URL_VARIABLE]: WEBHOOK });
    expect(inputsOf(alerted, "kubernetes:core/v1:ConfigMap", "flux-cluster-settings").data[ALERT_RECEIVER_VARIABLE]).toBe("webhook");
    expect(JSON.stringify(inputsOf(alerted, "kubernetes:core/v1:ConfigMap", "flux-cluster-settings"))).not.toContain("token-in-the-path");
    expect(alerted.find(TYPES.kustomization, "flux-sync").options.dependencies).toContain(alerted.urns.get(secret.id));
  });

  it("without one, sends nothing: the receiver is none and the URL empty", () => {
    expect(inputsOf(run, "kubernetes:core/v1:ConfigMap", "flux-cluster-settings").data[ALERT_RECEIVER_VARIABLE]).toBe("none");
    expect(reveal(run.find("kubernetes:core/v1:Secret", "flux-cluster-secrets").inputs.stringData)).toEqual({
      [ALERT_WEBHOOK_URL_VARIABLE]: "",
    });
  });

  it("refuses the webhook stored in plain text, and a value that is no http(s) URL without repeating it", async () => {
    await expect(runProgram("remote", withFluxFixture(alerting), mockCloud(), ["sshPrivateKey"])).rejects.toThrow(
      "k0s-platform:alertWebhookUrl is stored in plain text",
    );
    const bad = { ...alerting, alertWebhookUrl: "hooks.slack.example/secret-path" };
    const refusal = runProgram("remote", withFluxFixture(bad), mockCloud(), ["sshPrivateKey", "alertWebhookUrl"]);
    await expect(refusal).rejects.toThrow("k0s-platform:alertWebhookUrl must be an http:// or https:// URL with a host");
    await expect(refusal).rejects.not.toThrow("secret-path");
  });
});

describe("rolling k0s back by restoring a backup", () => {
  it("takes the restored version, named as such, as installed; without it the stack refuses to go back", async () => {
    const rolledBack = { ...seedStackConfig("remote"), ...userSettings, k0sVersion: "v1.35.4+k0s.0" };
    const cloud = () => mockCloud({ stackOutputs: { k0sVersion: "v1.36.3+k0s.2" } });
    await expect(runProgram("remote", withFluxFixture(rolledBack), cloud(), ["sshPrivateKey"])).rejects.toThrow("that is a downgrade");
    const told = await runProgram("remote", withFluxFixture({ ...rolledBack, k0sRestoredVersion: "v1.35.4+k0s.0" }), cloud(), [
      "sshPrivateKey",
    ]);
    expect(inputsOf(told, "command:remote:Command", "remote-k0s-install-k0s").create).toContain("want='v1.35.4+k0s.0'");
  });
});

describe("two clients' remote stacks in one DigitalOcean account", () => {
  const clientStack = (stack: string, settings: Record<string, unknown> = {}) =>
    runProgram(stack, withFluxFixture({ ...seedStackConfig("remote"), ...userSettings, ...settings }), mockCloud(), ["sshPrivateKey"]);
  /** Everything the account itself names: droplets, firewalls, SSH keys, tags. */
  const accountNames = (programRun: ProgramRun): string[] =>
    [DO.droplet, DO.firewall, "digitalocean:index/sshKey:SshKey"].flatMap((type) =>
      programRun.ofType(type).flatMap((entry) => {
        const inputs = reveal(entry.inputs) as { name?: string; tags?: string[] };
        return [inputs.name, ...(inputs.tags ?? [])].filter((name): name is string => name !== undefined && name !== "k0s");
      }),
    );

  it("name nothing alike, and the second reuses the key the account already holds instead of uploading it twice", async () => {
    const acme = await clientStack("acme-remote");
    const globex = await clientStack("globex.remote", { existingSshKey: "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa" });
    console.log(`acme: ${accountNames(acme).join(", ")}\nglobex: ${accountNames(globex).join(", ")}`);
    expect(accountNames(acme)).toEqual(expect.arrayContaining(["k0s-platform-acme-remote", "k0s-platform-acme-remote-admin"]));
    expect(accountNames(globex)).toContain("k0s-platform-globex-remote");
    expect(accountNames(acme).filter((name) => accountNames(globex).includes(name))).toEqual([]);
    expect(globex.ofType("digitalocean:index/sshKey:SshKey")).toEqual([]);
    expect(inputsOf(globex, DO.droplet, "remote-droplet").sshKeys).toEqual(["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]);
    // The public key still reaches authorized_keys over SSH, where rotation happens.
    expect(inputsOf(globex, "command:remote:Command", "remote-k0s-authorized-keys").create).toContain(`key='${PUBLIC_KEY}'`);
  });

  it("point only the environments' own host names at the droplet", async () => {
    const environments = seedStackConfig("remote").environments as Record<string, Record<string, unknown>>;
    const renamed = await clientStack("globex-remote", {
      domain: "globex.example",
      environments: {
        soak: { ...environments.staging, hosts: ["*.soak.globex.example"] },
        live: { ...environments.production, hosts: ["*.globex.example", "globex.example", "www.other.example"] },
      },
    });
    expect(renamed.ofType(DO.record).map((entry) => [entry.name, (reveal(entry.inputs) as { name: string }).name])).toEqual([
      ["remote-dns-soak-wildcard", "*.soak"],
      ["remote-dns-wildcard", "*"],
      ["remote-dns-apex", "@"],
    ]);
  });
});

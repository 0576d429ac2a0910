import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { isSecret, promiseOf } from "./mocks";
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
import { ACME_EMAIL_VARIABLE, CLUSTER_SETTINGS_NAME } from "../components/lib/flux";
import { admitsIngress } from "./lib/networkPolicy";
import { ProgramRun, runProgram, stackFileConfig, withFluxFixture } from "./lib/program";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme";
const ACME_EMAIL = "platform@acme-consulting.eu";
const ADMIN = ["203.0.113.7/32", "2001:db8::/64"];
let run: ProgramRun;

beforeAll(async () => {
  const config = stackFileConfig("remote");
  // What the README tells a user to set before the first `pulumi up --stack remote`.
  const userSettings = {
    adminCidrs: ADMIN,
    sshPublicKey: PUBLIC_KEY,
    sshPrivateKey: PRIVATE_KEY,
    domain: "example.com",
    acmeEmail: ACME_EMAIL,
  };
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
    const remoteOnly = graph.filter((line) => /digitalocean:|command:remote|DigitalOceanHost|K0sOverSsh|remote-k0s-provider/.test(line));
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
        "command:remote:Command remote-k0s-wait-for-host",
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

  it("opens SSH and the API only to the admin networks, web traffic to all", () => {
    const everywhere = ["0.0.0.0/0", "::/0"];
    expect(inputsOf(run, DO.firewall, "remote-firewall")).toMatchObject({
      dropletIds: [expect.any(Number)],
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

  it("protects the droplet and its address, and never rebuilds it for a new key or image", () => {
    expect(run.find(DO.droplet, "remote-droplet").options).toMatchObject({
      protect: true,
      ignoreChanges: ["userData", "sshKeys", "image"],
    });
    expect(run.find("digitalocean:index/reservedIp:ReservedIp", "remote-ip").options.protect).toBe(true);
    expect(inputsOf(run, DO.droplet, "remote-droplet")).toMatchObject({ region: "fra1", size: "s-2vcpu-4gb", image: "debian-12-x64" });
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
    expect(copy.remotePath).toBe("/etc/k0s/k0s.yaml");
    expect(parse(await copy.source.text).spec.api.sans).toEqual(["203.0.113.10", "api.example.com"]);
    expect(inputsOf(run, "command:remote:Command", "remote-k0s-install-k0s").triggers).toContain("v1.35.4+k0s.0");
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

  it("gives staging and production the seed's quotas, side by side", () => {
    const base = { client: "acme", billingGroup: "enterprise", isolated: true };
    expectEnvironment(run, {
      ...base,
      name: "staging",
      quota: { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", pods: "20" },
    });
    expectEnvironment(run, {
      ...base,
      name: "production",
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

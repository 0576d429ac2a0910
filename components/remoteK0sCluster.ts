import * as command from "@pulumi/command";
import * as digitalocean from "@pulumi/digitalocean";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  adminKubeconfigScript,
  installK0sScript,
  K0S_CONFIG_PATH,
  KUBE_API_PORT,
  renderK0sConfig,
  rewriteKubeconfigServer,
  sha256,
  waitForHostScript,
} from "./lib/k0s";

const EVERYWHERE = ["0.0.0.0/0", "::/0"];

export interface RemoteK0sClusterArgs {
  /** DigitalOcean region slug, for example fra1. */
  readonly region: string;
  /** Droplet size slug, for example s-2vcpu-4gb. */
  readonly size: string;
  /** Droplet image slug, for example debian-12-x64. Changing it later does not rebuild the droplet. */
  readonly image: string;
  /** Pinned k0s release, for example v1.35.1+k0s.0. */
  readonly k0sVersion: string;
  /** The only networks that may reach SSH (22) and the Kubernetes API (6443). */
  readonly adminCidrs: readonly string[];
  /** OpenSSH public key installed for root. */
  readonly sshPublicKey: string;
  /** The matching private key, secret. When undefined the SSH agent (SSH_AUTH_SOCK) authenticates. */
  readonly sshPrivateKey?: pulumi.Input<string>;
  /** A DigitalOcean-managed domain: adds *.<domain> and *.staging.<domain> records and an api.<domain> SAN. */
  readonly domain?: string;
  /** Whether `pulumi destroy` must refuse to delete the droplet and its address. Defaults to true. */
  readonly protect?: boolean;
}

/**
 * One DigitalOcean droplet running a single-node k0s, installed and configured over SSH. Re-runs are
 * no-ops; a changed k0s config or version is re-applied in place without replacing the droplet.
 */
export class RemoteK0sCluster extends pulumi.ComponentResource {
  /** Kubernetes provider for this cluster, built from the fetched admin kubeconfig. */
  public readonly provider: k8s.Provider;
  /** Admin kubeconfig pointing at the reserved IP; secret. */
  public readonly kubeconfig: pulumi.Output<string>;
  /** The reserved (stable) public IPv4 address. */
  public readonly publicIp: pulumi.Output<string>;

  constructor(name: string, args: RemoteK0sClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:RemoteK0sCluster", name, {}, opts);
    const protect = args.protect ?? true;

    const sshKey = new digitalocean.SshKey(`${name}-ssh-key`, { name: `${name}-admin`, publicKey: args.sshPublicKey }, { parent: this });
    const droplet = new digitalocean.Droplet(
      `${name}-droplet`,
      {
        name: name,
        region: args.region,
        size: args.size,
        image: args.image,
        sshKeys: [sshKey.fingerprint],
        ipv6: true,
        monitoring: true,
        tags: ["k0s", name],
      },
      // Rotating the SSH key or a new image release must never rebuild a running cluster.
      { parent: this, protect, ignoreChanges: ["userData", "sshKeys", "image"] },
    );
    const dropletId = droplet.id.apply(Number);

    const reservedIp = new digitalocean.ReservedIp(`${name}-ip`, { region: args.region }, { parent: this, protect });
    const assignment = new digitalocean.ReservedIpAssignment(
      `${name}-ip-assignment`,
      { ipAddress: reservedIp.ipAddress, dropletId },
      { parent: this },
    );
    this.publicIp = reservedIp.ipAddress;

    const firewall = new digitalocean.Firewall(
      `${name}-firewall`,
      {
        name: `${name}-firewall`,
        dropletIds: [dropletId],
        inboundRules: [
          { protocol: "tcp", portRange: "22", sourceAddresses: [...args.adminCidrs] },
          { protocol: "tcp", portRange: String(KUBE_API_PORT), sourceAddresses: [...args.adminCidrs] },
          { protocol: "tcp", portRange: "80", sourceAddresses: EVERYWHERE },
          { protocol: "tcp", portRange: "443", sourceAddresses: EVERYWHERE },
          { protocol: "icmp", sourceAddresses: EVERYWHERE },
        ],
        outboundRules: [
          { protocol: "tcp", portRange: "1-65535", destinationAddresses: EVERYWHERE },
          { protocol: "udp", portRange: "1-65535", destinationAddresses: EVERYWHERE },
          { protocol: "icmp", destinationAddresses: EVERYWHERE },
        ],
      },
      { parent: this },
    );

    const apiName = args.domain === undefined ? undefined : `api.${args.domain}`;
    if (args.domain !== undefined) {
      for (const [role, record] of [
        ["wildcard", "*"],
        ["staging-wildcard", "*.staging"],
      ] as const) {
        new digitalocean.DnsRecord(
          `${name}-dns-${role}`,
          { domain: args.domain, type: "A", name: record, value: reservedIp.ipAddress, ttl: 300 },
          { parent: this },
        );
      }
    }

    const k0sConfig = reservedIp.ipAddress.apply((ip) => renderK0sConfig({ sans: apiName === undefined ? [ip] : [ip, apiName] }));
    this.kubeconfig = this.installK0s(name, args, { droplet, firewall, assignment, host: reservedIp.ipAddress, k0sConfig });
    this.provider = new k8s.Provider(`${name}-provider`, { kubeconfig: this.kubeconfig, enableServerSideApply: true }, { parent: this });

    this.registerOutputs({ kubeconfig: this.kubeconfig, publicIp: this.publicIp });
  }

  /** The SSH steps: wait for the host, write the config, install and start k0s, fetch the kubeconfig. */
  private installK0s(
    name: string,
    args: RemoteK0sClusterArgs,
    host: {
      droplet: digitalocean.Droplet;
      firewall: digitalocean.Firewall;
      assignment: digitalocean.ReservedIpAssignment;
      host: pulumi.Output<string>;
      k0sConfig: pulumi.Output<string>;
    },
  ): pulumi.Output<string> {
    const connection: command.types.input.remote.ConnectionArgs = {
      host: host.host,
      user: "root",
      privateKey: args.sshPrivateKey === undefined ? undefined : pulumi.secret(args.sshPrivateKey),
      // A fresh droplet refuses SSH for its first minute or so; keep dialling instead of failing.
      dialErrorLimit: 30,
      perDialTimeout: 10,
    };
    const configHash = host.k0sConfig.apply(sha256);
    const ready = [host.droplet, host.firewall, host.assignment];

    const waitForHost = new command.remote.Command(
      `${name}-wait-for-host`,
      { connection, create: waitForHostScript(), triggers: [host.droplet.id] },
      { parent: this, dependsOn: ready },
    );
    const config = new command.remote.CopyToRemote(
      `${name}-k0s-config`,
      {
        connection,
        source: host.k0sConfig.apply((text) => new pulumi.asset.StringAsset(text)),
        remotePath: K0S_CONFIG_PATH,
        triggers: [host.droplet.id, configHash],
      },
      { parent: this, dependsOn: [waitForHost] },
    );
    const install = new command.remote.Command(
      `${name}-install-k0s`,
      {
        connection,
        create: installK0sScript(args.k0sVersion),
        update: installK0sScript(args.k0sVersion),
        triggers: [host.droplet.id, configHash, args.k0sVersion],
      },
      { parent: this, dependsOn: [config] },
    );
    const adminKubeconfig = new command.remote.Command(
      `${name}-admin-kubeconfig`,
      { connection, create: adminKubeconfigScript(), triggers: [host.droplet.id, install.stdout], logging: "none" },
      { parent: this, dependsOn: [install], additionalSecretOutputs: ["stdout"] },
    );
    return pulumi.secret(
      pulumi
        .all([adminKubeconfig.stdout, host.host])
        .apply(([kubeconfig, ip]) => rewriteKubeconfigServer(kubeconfig, `https://${ip}:${KUBE_API_PORT}`)),
    );
  }
}

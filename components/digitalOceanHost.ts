import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import { KUBE_API_PORT } from "./lib/k0s";

const EVERYWHERE = ["0.0.0.0/0", "::/0"];

export interface DigitalOceanHostArgs {
  /** DigitalOcean region slug, for example fra1. */
  readonly region: string;
  /** Droplet size slug, for example s-2vcpu-4gb. */
  readonly size: string;
  /** Droplet image slug, for example debian-12-x64. Changing it later does not rebuild the droplet. */
  readonly image: string;
  /** The only networks that may reach SSH (22) and the Kubernetes API (6443). */
  readonly adminCidrs: readonly string[];
  /** OpenSSH public key installed for root. */
  readonly sshPublicKey: string;
  /** A DigitalOcean-managed domain: adds *.<domain> and *.staging.<domain> records. */
  readonly domain?: string;
  /** Whether `pulumi destroy` must refuse to delete the droplet and its address. Defaults to true. */
  readonly protect?: boolean;
}

/**
 * One DigitalOcean droplet to run k0s on: the droplet with the admin's SSH key, a reserved (stable)
 * IP, a cloud firewall that opens SSH and the API to the admin networks only, and optional DNS
 * records. What goes onto it over SSH is K0sOverSsh's job.
 */
export class DigitalOceanHost extends pulumi.ComponentResource {
  /** The reserved (stable) public IPv4 address. */
  public readonly publicIp: pulumi.Output<string>;
  /** The droplet's id: a replaced droplet is a new machine. */
  public readonly dropletId: pulumi.Output<string>;

  constructor(name: string, args: DigitalOceanHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:DigitalOceanHost", name, {}, opts);
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
    this.dropletId = droplet.id;
    const dropletId = droplet.id.apply(Number);

    const reservedIp = new digitalocean.ReservedIp(`${name}-ip`, { region: args.region }, { parent: this, protect });
    new digitalocean.ReservedIpAssignment(`${name}-ip-assignment`, { ipAddress: reservedIp.ipAddress, dropletId }, { parent: this });
    this.publicIp = reservedIp.ipAddress;

    new digitalocean.Firewall(
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

    this.registerOutputs({ publicIp: this.publicIp, dropletId: this.dropletId });
  }
}

import * as command from "@pulumi/command";
import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { generateSshKeyPair, type SshKeyPair } from "./lib/sshKeys";
import { HOST_FIREWALL_UNIT, hostFirewallApplyScript, KUBE_API_PORT, KUBELET_PORT } from "./lib/k0s";

const EVERYWHERE = ["0.0.0.0/0", "::/0"];
const SSH_PORT = 22;

export interface DigitalOceanHostArgs {
  /**
   * What the droplet, its firewall, key and tags are called in the DigitalOcean account: derived from
   * the stack (cloudName), so two stacks in one account never share a name.
   */
  readonly cloudName: string;
  /** DigitalOcean region slug, for example fra1. */
  readonly region: string;
  /** Droplet size slug, for example s-2vcpu-4gb. */
  readonly size: string;
  /** Droplet image slug, for example debian-12-x64. Changing it later does not rebuild the droplet. */
  readonly image: string;
  /** The only networks that may reach SSH (22) and the Kubernetes API (6443). */
  readonly adminCidrs: readonly string[];
  /** OpenSSH public key installed for root at creation (K0sOverSsh keeps authorized_keys current after). */
  readonly sshPublicKey: string;
  /** An SSH key already in the account (fingerprint or id), used instead of uploading sshPublicKey. */
  readonly existingSshKey?: string;
  /** A DigitalOcean-managed domain, and the records (`*`, `*.staging`…) to point at the droplet there. */
  readonly dns?: { readonly domain: string; readonly records: readonly string[] };
  /** Whether `pulumi destroy` must refuse to delete the droplet and its address. Defaults to true. */
  readonly protect?: boolean;
  /** DigitalOcean's weekly backups of the whole droplet. Defaults to false. */
  readonly backups?: boolean;
}

/**
 * One DigitalOcean droplet to run k0s on: the droplet with the admin's SSH key and an SSH host key
 * the program generated, a reserved (stable) IP, a cloud firewall that opens SSH and the API to the
 * admin networks only, and optional DNS records. What goes onto it over SSH is K0sOverSsh's job.
 */
export class DigitalOceanHost extends pulumi.ComponentResource {
  /** The reserved (stable) public IPv4 address. */
  public readonly publicIp: pulumi.Output<string>;
  /** The droplet's id: a replaced droplet is a new machine. */
  public readonly dropletId: pulumi.Output<string>;
  /** The droplet's SSH host key line (`ssh-ed25519 AAAA…`), known before it boots: pin every connection to it. */
  public readonly hostPublicKey: pulumi.Output<string>;

  constructor(name: string, args: DigitalOceanHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:DigitalOceanHost", name, {}, opts);
    const protect = args.protect ?? true;

    // The host key is generated here, never on the droplet, so the first connection can already
    // refuse an impostor (pinning on first contact would trust whoever answers first). A fresh key
    // is proposed on every run; the keeper ignores it after creation and hands back the stored one,
    // as SopsAgeKey does with the age key, so the key stays stable with no extra provider plugin.
    // The keeper runs nothing: it only holds the key, secret, in the stack's state.
    const proposed = generateSshKeyPair(`root@${name}`);
    const keeper = new command.local.Command(
      `${name}-host-key`,
      { triggers: [proposed.publicKey, pulumi.secret(proposed.privateKey)] },
      { parent: this, ignoreChanges: ["triggers"], additionalSecretOutputs: ["triggers"] },
    );
    const stored = keeper.triggers.apply((triggers) => ({ publicKey: String(triggers![0]), privateKey: String(triggers![1]) }));
    this.hostPublicKey = pulumi.unsecret(stored.apply((key) => key.publicKey));

    const sshKey =
      args.existingSshKey ??
      new digitalocean.SshKey(`${name}-ssh-key`, { name: `${args.cloudName}-admin`, publicKey: args.sshPublicKey }, { parent: this })
        .fingerprint;

    // DigitalOcean attaches a firewall to a droplet only after the droplet exists. Two things close
    // that gap. The firewall is created first and applies by tag, so it covers the droplet from its
    // creation rather than after a later API call names it. And the droplet's first boot guards
    // itself: cloud-init's bootcmd runs in its network stage, which systemd orders before sshd, and
    // loads a host firewall that lets only the admin networks reach SSH, the API and the kubelet.
    const guardTag = `${args.cloudName}-${name}`;
    const firewall = new digitalocean.Firewall(
      `${name}-firewall`,
      {
        name: `${args.cloudName}-firewall`,
        tags: [guardTag],
        inboundRules: [
          { protocol: "tcp", portRange: String(SSH_PORT), sourceAddresses: [...args.adminCidrs] },
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

    // No pods run at first boot (k0s comes later, after K0sOverSsh's persistent firewall), so
    // only the admin networks and the host itself pass.
    const firstBootFirewall = hostFirewallApplyScript({
      ports: [SSH_PORT, KUBE_API_PORT, KUBELET_PORT],
      adminCidrs: args.adminCidrs,
      podNetworks: [],
    });
    const droplet = new digitalocean.Droplet(
      `${name}-droplet`,
      {
        name: args.cloudName,
        region: args.region,
        size: args.size,
        image: args.image,
        sshKeys: [sshKey],
        userData: pulumi.secret(stored.apply((hostKey) => renderCloudInit({ hostKey, firstBootFirewall }))),
        ipv6: true,
        monitoring: true,
        backups: args.backups ?? false,
        tags: ["k0s", args.cloudName, guardTag],
      },
      // Rotating the SSH key or a new image release must never rebuild a running cluster; user data
      // is read at first boot only (K0sOverSsh keeps authorized_keys and the firewall current).
      { parent: this, protect, dependsOn: [firewall], ignoreChanges: ["userData", "sshKeys", "image"] },
    );
    this.dropletId = droplet.id;
    const dropletId = droplet.id.apply(Number);

    const reservedIp = new digitalocean.ReservedIp(`${name}-ip`, { region: args.region }, { parent: this, protect });
    new digitalocean.ReservedIpAssignment(`${name}-ip-assignment`, { ipAddress: reservedIp.ipAddress, dropletId }, { parent: this });
    this.publicIp = reservedIp.ipAddress;

    for (const record of args.dns?.records ?? []) {
      // `*.staging` is `staging-wildcard`: the record's labels, most significant first.
      const label = (text: string) => (text === "*" ? "wildcard" : text === "@" ? "apex" : text);
      const role = record.split(".").reverse().map(label).join("-");
      new digitalocean.DnsRecord(
        `${name}-dns-${role}`,
        { domain: args.dns!.domain, type: "A", name: record, value: reservedIp.ipAddress, ttl: 300 },
        { parent: this },
      );
    }

    this.registerOutputs({ publicIp: this.publicIp, dropletId: this.dropletId, hostPublicKey: this.hostPublicKey });
  }
}

/**
 * The droplet's cloud-config: sshd presents only the given ed25519 host key (no other type is
 * generated, so no client can be offered a key it has not pinned), and the first-boot firewall
 * runs in bootcmd, before sshd starts, on every boot until K0sOverSsh has installed the persistent
 * one (whose unit then loads it before the network comes up).
 */
export function renderCloudInit(options: { hostKey: SshKeyPair; firstBootFirewall: string }): string {
  const firstBoot = `if [ ! -e /etc/systemd/system/${HOST_FIREWALL_UNIT} ]; then\n${options.firstBootFirewall}\nfi\n`;
  return `#cloud-config\n${stringify(
    {
      ssh_deletekeys: true,
      ssh_genkeytypes: [],
      ssh_keys: { ed25519_private: options.hostKey.privateKey, ed25519_public: options.hostKey.publicKey },
      bootcmd: [["bash", "-c", firstBoot]],
    },
    { lineWidth: 0 },
  )}`;
}

import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { K0sInstall, SshAccess } from "./config";
import { backupEnvironment, backupInstallScript, type BackupConfig } from "./lib/backup";
import {
  adminKubeconfigScript,
  apiServerUrl,
  authorizedKeysScript,
  hostFirewallScript,
  installK0sScript,
  KUBE_API_PORT,
  KUBELET_PORT,
  asRoot,
  IMAGES_UPLOAD_DIR,
  K0S_CONFIG_UPLOAD_PATH,
  K0S_UPLOAD_PATH,
  podNetworks,
  renderK0sConfig,
  rewriteKubeconfig,
  sha256,
  waitForHostScript,
} from "./lib/k0s";

export interface K0sOverSshArgs {
  /** The address the program dials, and the one the kubeconfig and the API certificate name. */
  readonly host: pulumi.Input<string>;
  /** What the exported kubeconfig calls its cluster, user and context (not k0s's `Default`). */
  readonly kubeconfigName: string;
  /** How to reach the host: port, user, key (or agent), pinned host key, dial attempts. */
  readonly ssh: SshAccess;
  /** Which k0s to install: pinned version and sha256, optional uploads for air-gapped hosts. */
  readonly k0s: K0sInstall;
  /** Names the API certificate must cover besides `host` and `k0s.extraSans` (api.<domain>). */
  readonly extraSans?: readonly string[];
  /** What identifies the machine (a droplet's id): a new machine reruns every step. Defaults to `host`. */
  readonly machineId?: pulumi.Input<string>;
  /** Resources the host needs before the first dial (a droplet, its firewall and address). */
  readonly after?: pulumi.Input<pulumi.Resource>[];
  /**
   * The host key the program gave the host before its first boot (a droplet's). Every connection
   * pins it; `ssh.hostKey`, when set, is pinned instead. Defaults to `ssh.hostKey`.
   */
  readonly hostKey?: pulumi.Input<string>;
  /** Scheduled `k0s backup` to S3-compatible storage, installed once k0s runs; none if unset. */
  readonly backup?: BackupConfig;
}

/**
 * k0s as a single-node controller+worker on any SSH host: wait for the host's first boot, keep the
 * admin's key in authorized_keys (where one is configured) and a host firewall in place, upload the
 * binary and image bundles where air-gapped, write the k0s config, install the k0s release whose
 * sha256 matches its pin, start it, and fetch the admin kubeconfig pointed at `host`. Every step runs
 * only when its inputs change, so a second `pulumi up` opens no SSH session; a changed config,
 * version, key or admin network is re-applied in place.
 */
export class K0sOverSsh extends pulumi.ComponentResource {
  /** Kubernetes provider for this cluster, built from the fetched admin kubeconfig. */
  public readonly provider: k8s.Provider;
  /** Admin kubeconfig pointing at `host`; secret. */
  public readonly kubeconfig: pulumi.Output<string>;
  /** The k0s version the install step left running, as `k0s version` reported it. */
  public readonly k0sVersion: pulumi.Output<string>;

  constructor(name: string, args: K0sOverSshArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:K0sOverSsh", name, {}, opts);
    const { ssh, k0s } = args;

    const connection: command.types.input.remote.ConnectionArgs = {
      host: args.host,
      port: ssh.port,
      user: ssh.user,
      privateKey: ssh.privateKey === undefined ? undefined : pulumi.secret(ssh.privateKey),
      // The provider checks the host key before it authenticates or sends anything, so a host that
      // presents any other key gets neither the scripts nor the kubeconfig. The agent is not set
      // here: the provider reads SSH_AUTH_SOCK itself, so loadConfig refuses to run with an agent
      // in reach unless sshUseAgent asks for it (see sshAgentErrors in config.ts).
      hostKey: ssh.hostKey ?? args.hostKey,
      // A fresh host refuses SSH for its first minute or so: keep dialling (about 5 s apart).
      dialErrorLimit: ssh.dialAttempts,
      perDialTimeout: 10,
    };
    const machineId = pulumi.output(args.machineId ?? args.host);
    const sans = [...k0s.extraSans, ...(args.extraSans ?? [])];
    const k0sConfig = pulumi.output(args.host).apply((host) => renderK0sConfig({ sans: [host, ...sans], spec: k0s.spec }));
    const configHash = k0sConfig.apply(sha256);
    const step = { parent: this };
    // Every step but authorized_keys (the login user's own file) needs root.
    const root = (script: string) => asRoot(script, ssh.user);

    const waitForHost = new command.remote.Command(
      `${name}-wait-for-host`,
      { connection, create: root(waitForHostScript(ssh.user)), triggers: [machineId] },
      { ...step, dependsOn: args.after },
    );
    const uploads: pulumi.Resource[] = [waitForHost];
    const imagesDigest = k0s.airgapImagesPath === undefined ? undefined : bundleDigest(k0s.airgapImagesPath);
    if (k0s.binaryPath !== undefined) {
      uploads.push(
        new command.remote.CopyToRemote(
          `${name}-k0s-binary`,
          {
            connection,
            source: new pulumi.asset.FileAsset(k0s.binaryPath),
            remotePath: K0S_UPLOAD_PATH,
            triggers: [machineId, k0s.version, k0s.sha256],
          },
          { ...step, dependsOn: [waitForHost] },
        ),
      );
    }
    if (k0s.airgapImagesPath !== undefined) {
      uploads.push(
        new command.remote.CopyToRemote(
          `${name}-airgap-images`,
          {
            connection,
            // The trailing slash copies the bundles themselves, not their folder.
            source: new pulumi.asset.FileArchive(`${path.resolve(k0s.airgapImagesPath)}/`),
            remotePath: IMAGES_UPLOAD_DIR,
            triggers: [machineId, imagesDigest],
          },
          { ...step, dependsOn: [waitForHost] },
        ),
      );
    }
    // The host firewall goes in before k0s: the API and the kubelet never listen unguarded, and a
    // host with no cloud firewall (the ssh target) keeps them for the admin networks only.
    const firewallScript = root(
      hostFirewallScript({ ports: [KUBE_API_PORT, KUBELET_PORT], adminCidrs: k0s.adminCidrs, podNetworks: podNetworks(k0s.spec) }),
    );
    const firewall = new command.remote.Command(
      `${name}-host-firewall`,
      { connection, create: firewallScript, update: firewallScript, triggers: [machineId] },
      { ...step, dependsOn: [waitForHost] },
    );
    if (ssh.authorizedKey !== undefined) {
      // The droplet's SSH key is read at creation only (its user data and key list are ignored
      // after), so a rotated sshPublicKey reaches the host through this step instead.
      const keys = authorizedKeysScript(ssh.authorizedKey);
      new command.remote.Command(
        `${name}-authorized-keys`,
        { connection, create: keys, update: keys, triggers: [machineId] },
        { ...step, dependsOn: [waitForHost] },
      );
    }
    const config = new command.remote.CopyToRemote(
      `${name}-k0s-config`,
      {
        connection,
        source: k0sConfig.apply((text) => new pulumi.asset.StringAsset(text)),
        remotePath: K0S_CONFIG_UPLOAD_PATH,
        triggers: [machineId, configHash],
      },
      { ...step, dependsOn: [waitForHost] },
    );
    const script = root(
      installK0sScript({
        version: k0s.version,
        sha256: k0s.sha256,
        uploaded: k0s.binaryPath !== undefined,
        imagesUploaded: imagesDigest !== undefined,
      }),
    );
    const install = new command.remote.Command(
      `${name}-install-k0s`,
      {
        connection,
        create: script,
        update: script,
        triggers: [machineId, configHash, k0s.version, k0s.sha256 ?? "", imagesDigest ?? ""],
      },
      { ...step, dependsOn: [config, firewall, ...uploads] },
    );
    if (args.backup !== undefined) {
      const schedule = root(backupInstallScript(args.backup.schedule));
      const settings = backupEnvironment(args.backup);
      new command.remote.Command(
        `${name}-backup-schedule`,
        {
          connection,
          create: schedule,
          update: schedule,
          // The credentials reach the host on stdin, never in a command line or the step's log.
          stdin: pulumi.secret(settings),
          triggers: [machineId, pulumi.secret(sha256(settings))],
        },
        { ...step, dependsOn: [install] },
      );
    }
    const adminKubeconfig = new command.remote.Command(
      `${name}-admin-kubeconfig`,
      { connection, create: root(adminKubeconfigScript()), triggers: [machineId, install.stdout], logging: "none" },
      { ...step, dependsOn: [install], additionalSecretOutputs: ["stdout"] },
    );
    // Waits for the firewall step too, so after a change of admin networks nothing dials the API
    // before the host lets the new networks in.
    this.kubeconfig = pulumi.secret(
      pulumi
        .all([adminKubeconfig.stdout, args.host, firewall.stdout])
        .apply(([kubeconfig, host]) => rewriteKubeconfig(kubeconfig, apiServerUrl(host), args.kubeconfigName)),
    );
    this.provider = new k8s.Provider(`${name}-provider`, { kubeconfig: this.kubeconfig, enableServerSideApply: true }, step);

    this.k0sVersion = install.stdout.apply((stdout) => stdout.trim().split("\n").pop() ?? "");

    this.registerOutputs({ kubeconfig: this.kubeconfig, k0sVersion: this.k0sVersion });
  }
}

/** A digest of a bundle directory's file names and contents: a changed bundle is uploaded again. */
function bundleDigest(dir: string): string {
  const hash = createHash("sha256");
  for (const file of fs.readdirSync(dir).sort()) {
    hash.update(file);
    hash.update(fs.readFileSync(path.join(dir, file)));
  }
  return hash.digest("hex");
}

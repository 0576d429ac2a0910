/**
 * A rehearsal host that behaves like a fresh DigitalOcean droplet: Debian 12 booted with systemd as
 * PID 1 (systemd-nspawn) from a root filesystem debootstrap made from Debian's packages, OpenSSH
 * with the admin's key for root, a static address on its own network, and cloud-init's completion
 * marker written late in its boot, as a droplet's cloud-init does.
 *
 * It lives on a private "internet" network namespace; the operator's SSH client runs there too. Its
 * cgroups, mounts and network disappear when it stops. No k0s runs on it (see k0s.ssh.ts), so it needs
 * none of the node rung's cgroup v1 workarounds.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cgroupsNamed, createCgroup, IN_CGROUPS, removeCgroups } from "../harness/cgroups";
import { startNetworkNamespace, type NetworkNamespace } from "../harness/network";
import { namespaceInitOf, once, onTermination, run, startDaemon, StopWaiting, tail, waitFor, type Daemon } from "../harness/processes";

/** The droplet's address, and the internet side's (its gateway, where the CLI dials from). */
export const DROPLET_ADDRESS = "10.214.0.2";
export const INTERNET_ADDRESS = "10.214.0.1";
const MACHINE = "droplet";
/** systemd-nspawn exits with this status when the container asked to reboot. */
const REBOOT_STATUS = 133;

/** What makes the root filesystem a droplet: its network, the admin's key, cloud-init's marker. */
function dropletFiles(authorizedKey: string): Record<string, string> {
  return {
    "etc/hostname": `${MACHINE}\n`,
    "etc/hosts": `127.0.0.1 localhost\n${DROPLET_ADDRESS} ${MACHINE}\n`,
    "etc/resolv.conf": `nameserver ${INTERNET_ADDRESS}\n`,
    // Sorts before nspawn's vendor 80-container-host0.network, which would ask for DHCP.
    "etc/systemd/network/10-host0.network": `[Match]\nName=host0\n\n[Network]\nAddress=${DROPLET_ADDRESS}/24\nGateway=${INTERNET_ADDRESS}\n`,
    "root/.ssh/authorized_keys": `${authorizedKey.trim()}\n`,
    // A droplet's cloud-init writes this at the end of its first boot, well after sshd is up.
    "etc/systemd/system/cloud-boot-finished.service": [
      "[Unit]",
      "Description=Rehearsal of cloud-init's final stage: boot-finished",
      "After=network-online.target",
      "[Service]",
      "Type=oneshot",
      "ExecStart=/bin/sh -c 'sleep 5; mkdir -p /var/lib/cloud/instance; date > /var/lib/cloud/instance/boot-finished'",
      "[Install]",
      "WantedBy=multi-user.target",
      "",
    ].join("\n"),
  };
}

export interface Droplet {
  readonly dir: string;
  readonly rootfs: string;
  readonly internet: NetworkNamespace;
  /** Runs a command on the droplet, as root, and returns its stdout. */
  exec(...argv: string[]): string;
  /** The host key sshd presents, as an OpenSSH public key line without a comment. */
  hostKey(): string;
  /** SSH sessions sshd has accepted since the droplet was created. */
  sshSessions(): number;
  /** Reboots the droplet and waits until systemd reports it running again. */
  reboot(): Promise<void>;
  diagnostics(): string;
  stop(): Promise<void>;
}

export async function startDroplet(options: { rootfsTar: string; authorizedKey: string }): Promise<Droplet> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-droplet-"));
  const rootfs = path.join(dir, "rootfs");
  const cgroups = cgroupsNamed(path.basename(dir));
  const internet = await startNetworkNamespace("internet", dir);
  let machine: Daemon | undefined;
  let sessionsBefore = 0;

  const removeEverything = () => {
    for (const daemon of [machine, internet.daemon]) daemon?.kill();
    removeCgroups(cgroups);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const stop = once(async () => {
    // SIGTERM makes nspawn power the container off cleanly.
    await machine?.stop(30_000);
    await internet.daemon.stop(1_000);
    removeEverything();
    deregister();
  });
  const deregister = onTermination({ async: stop, sync: removeEverything });

  /** PID 1 of the running machine, looked up once per boot. */
  let init: number | undefined;
  const containerInit = () => {
    const pid = machine?.child.pid;
    return pid === undefined ? undefined : (init ??= namespaceInitOf(pid));
  };
  const exec = (...argv: string[]) => {
    const pid = containerInit();
    if (pid === undefined) throw new Error("the droplet is not running");
    return run("nsenter", ["-t", String(pid), "-a", "--", ...argv]);
  };

  const boot = async () => {
    init = undefined;
    machine = startDaemon(
      `${MACHINE}-${Date.now()}`,
      "bash",
      [
        IN_CGROUPS,
        ...cgroups.flatMap((cgroup) => ["--cgroup", cgroup.path]),
        "--",
        ...internet.wrap(["unshare", "--mount", "--propagation", "private", "--"]),
        ...["systemd-nspawn", "--boot", `--directory=${rootfs}`, `--machine=${MACHINE}`, "--register=no", "--keep-unit"],
        ...["--network-veth", "--console=passive"],
      ],
      { logDir: dir },
    );
    const alive = () => {
      if (machine!.dead()) throw new StopWaiting(`systemd-nspawn exited:\n${tail(machine!.logPath)}`);
    };
    const link = `ve-${MACHINE}`;
    await waitFor("the droplet's veth", () => (alive(), internet.run("ip", "-o", "link").includes(link) || undefined), 30_000, 100);
    if (!internet.run("ip", "-o", "addr", "show", "dev", link).includes(INTERNET_ADDRESS)) {
      internet.run("ip", "addr", "add", `${INTERNET_ADDRESS}/24`, "dev", link);
    }
    internet.run("ip", "link", "set", link, "up");
    await waitFor(
      "systemd on the droplet to finish booting",
      () => {
        alive();
        const state = exec("systemctl", "is-system-running").trim();
        return ["running", "degraded"].includes(state) ? state : undefined;
      },
      120_000,
      500,
    );
  };

  try {
    for (const cgroup of cgroups) createCgroup(cgroup);
    fs.mkdirSync(rootfs);
    run("tar", ["-xpf", options.rootfsTar, "-C", rootfs, "--numeric-owner"]);
    for (const [file, text] of Object.entries(dropletFiles(options.authorizedKey))) {
      const target = path.join(rootfs, file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, text, { mode: file.includes(".ssh/") ? 0o600 : 0o644 });
    }
    fs.chmodSync(path.join(rootfs, "root/.ssh"), 0o700);
    fs.mkdirSync(path.join(rootfs, "var/lib/cloud"), { recursive: true });
    const enable = (unit: string, target: string) => {
      const wants = path.join(rootfs, "etc/systemd/system", `${target}.wants`);
      fs.mkdirSync(wants, { recursive: true });
      const vendor = ["lib/systemd/system", "etc/systemd/system"]
        .map((dir) => path.join("/", dir, unit))
        .find((candidate) => fs.existsSync(path.join(rootfs, candidate)))!;
      fs.symlinkSync(vendor, path.join(wants, unit));
    };
    enable("systemd-networkd.service", "multi-user.target");
    enable("cloud-boot-finished.service", "multi-user.target");
    await boot();
  } catch (error) {
    const logs = machine === undefined ? "" : tail(machine.logPath, 60);
    await stop();
    throw new Error(`the droplet failed to start: ${(error as Error).message}\n${logs}`);
  }

  const sessions = () => Number(exec("sh", "-c", "journalctl -u ssh -o cat --no-pager | grep -c 'Accepted publickey' || true").trim());
  return {
    dir,
    rootfs,
    internet,
    exec,
    hostKey: () => fs.readFileSync(path.join(rootfs, "etc/ssh/ssh_host_ed25519_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" "),
    sshSessions: () => sessionsBefore + sessions(),
    async reboot() {
      // The journal lives on until the next boot's; sessions counted so far are kept.
      sessionsBefore += sessions();
      const previous = machine!;
      exec("systemctl", "reboot");
      await previous.exited;
      if (previous.child.exitCode !== REBOOT_STATUS) throw new Error(`systemd-nspawn exited with ${previous.child.exitCode}, not a reboot`);
      await boot();
    },
    diagnostics: () => `--- droplet console (last lines) ---\n${machine === undefined ? "" : tail(machine.logPath, 80)}`,
    stop,
  };
}

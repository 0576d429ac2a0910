/**
 * The SSH-host rung: the program's own SSH steps (wait for the host, write the k0s config, install
 * k0s, fetch the admin kubeconfig), read from the program under mocks, run over real SSH (Debian's
 * OpenSSH client and server) onto a host that boots like a fresh droplet (Debian 12, systemd as
 * PID 1), in the order and with the inputs the program declares. The install downloads from a
 * release server on the rehearsal's internet that serves the real URL layout at the host name the
 * script names, so the default path runs: the binary and its release's sha256sums.txt.
 *
 * What is installed is k0s-test-double (e2e/ssh/k0s-test-double), not k0s: k0s cannot be built
 * here. It records its calls, writes and enables a systemd unit as `k0s install controller` does,
 * and answers readiness and `k0s kubeconfig admin` from a real kube-apiserver this rung starts. So
 * this rung proves only what the scripts decide: checksum refusal, idempotent re-runs, the unit
 * coming back after a reboot, and bounded waits. What the command provider decides (dial retries,
 * host-key refusal, no session on an unchanged `up`) is asserted under mocks in
 * test/stack-ssh.test.ts; what k0s itself does runs only at a user's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { parse } from "yaml";
import * as pulumi from "@pulumi/pulumi";
import { MONITORING_DATA_DIR } from "../../components/lib/k0s";
import { upgradeProblem } from "../../components/lib/k0sUpgrade";
import { leftoversSince, snapshot, type Snapshot } from "../harness/leftovers";
import { run, waitFor } from "../harness/processes";
import { story } from "../harness/story";
import { TOOLCHAIN_BIN } from "../harness/toolchain";
import { promiseOf } from "../../test/mocks";
import { DROPLET_ADDRESS, INTERNET_ADDRESS, type Droplet } from "./droplet";
import { publishRelease, releaseUrls, sha256, startRehearsal, type Rehearsal } from "./rehearsal";
import { declaredSshSteps, runStep, runSteps, type DeclaredProgram, type Operator, type StepResult } from "./steps";
import type { ReleaseServer } from "./testNetwork";

/** The double as the default k0sVersion, and as the release before it, which the rung installs first. */
const DOUBLE = path.join(TOOLCHAIN_BIN, "k0s-test-double");
const DOUBLE_BEFORE = path.join(TOOLCHAIN_BIN, "k0s-test-double-upgrade-from");
const STACK = "rehearsal";
/** A later patch for the upgrade whose download is tampered with (never runs: it is refused). */
const NEXT_VERSION = "v1.35.5+k0s.0";
/** What each double reports as its version. */
const versionOf = (double: string) => run(double, ["version"]).trim();
const CALLS = "var/log/k0s-test-double/calls.log";

let before: Snapshot;
let droplet: Droplet;
let rehearsal: Rehearsal;
let release: ReleaseServer;
let operator: Operator;
let privateKey: string;
let program: DeclaredProgram;
let config: Record<string, unknown>;
const rung = story();
const { step } = rung;
let stopped = false;

const onHost = (file: string) => path.join(droplet.rootfs, file);
const hostFile = (file: string) => (fs.existsSync(onHost(file)) ? fs.readFileSync(onHost(file)) : undefined);
const hostDigest = (file: string) => {
  const data = hostFile(file);
  return data === undefined ? "absent" : sha256(data);
};
/** Every call the test double recorded, as argv lists. */
const calls = (): string[][] =>
  (hostFile(CALLS)?.toString() ?? "")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line.slice(line.indexOf(" ") + 1)) as string[]);
const installs = () => calls().filter((argv) => argv[1] === "install").length;
const k0sStartedAt = () => droplet.exec("systemctl", "show", "k0scontroller", "-p", "ActiveEnterTimestampMonotonic").trim();
/** What the host holds of k0s: binary, unit, config, and whether a half-done download is left. */
const installedState = () => ({
  binary: hostDigest("usr/local/bin/k0s"),
  download: hostDigest("var/lib/k0s-platform/upload/k0s.download"),
  unit: hostDigest("etc/systemd/system/k0scontroller.service"),
  config: hostDigest("etc/k0s/k0s.yaml"),
});
const expectOk = (name: string, result: StepResult | undefined) => {
  expect(result, `${name} did not run`).toBeDefined();
  expect(result!.status, `${name} failed:\n${result!.stderr}`).toBe(0);
  return result!;
};

beforeAll(async () => {
  before = snapshot();
  rehearsal = await startRehearsal(STACK);
  ({ droplet, release, operator, privateKey } = rehearsal);
  // A cluster created before the default moved: the release before it, upgraded in place below.
  config = { ...rehearsal.config, k0sVersion: versionOf(DOUBLE_BEFORE) };
  program = await declaredSshSteps(STACK, config);
}, 600_000);

afterAll(async () => {
  if (stopped || droplet === undefined) return;
  if (rung.failed) console.log(`${droplet.diagnostics()}\n--- test double calls ---\n${hostFile(CALLS)?.toString() ?? "(none)"}`);
  if (process.env.E2E_KEEP === "1") {
    console.log(`E2E_KEEP=1: the droplet keeps running in ${droplet.dir}`);
    return;
  }
  await rehearsal.stop();
});

describe("the program's SSH steps, run over SSH", () => {
  step("are read from the program: wait for the host, write the config, install k0s, fetch the kubeconfig", () => {
    expect(program.steps.map((declared) => declared.name)).toEqual([
      "ssh-k0s-wait-for-host",
      "ssh-k0s-host-firewall",
      "ssh-k0s-k0s-config",
      "ssh-k0s-install-k0s",
      "ssh-k0s-admin-kubeconfig",
    ]);
    for (const declared of program.steps) expect(declared.connection).toMatchObject({ host: DROPLET_ADDRESS, user: "root", port: 22 });
    // The double must report the version the program installs, or the script would download forever.
    expect(program.step("install-k0s").create).toContain(`want='${versionOf(DOUBLE_BEFORE)}'`);
  });

  step(
    "refuse a download whose sha256 is not the release's published one: nothing is installed, not even the config",
    async () => {
      const double = fs.readFileSync(DOUBLE_BEFORE);
      publishRelease(release, releaseUrls(program), Buffer.concat([double, Buffer.from("tampered")]), double);
      const results = await runSteps(operator, program.steps);
      const install = results.get("ssh-k0s-install-k0s")!;
      expect(install.status).toBe(1);
      expect(install.stderr).toMatch(/refusing to install k0s v[^:]+: its sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}/);
      expect(results.has("ssh-k0s-admin-kubeconfig")).toBe(false);
      // The config waits in the upload directory: k0s's own path is written only once the binary checks out.
      expect(installedState()).toEqual({ binary: "absent", download: "absent", unit: "absent", config: "absent" });
      expect(hostDigest("var/lib/k0s-platform/upload/k0s.yaml")).toBe(sha256(program.step("k0s-config").content!));
      expect(calls()).toEqual([]);
      expect(release.requests.map((request) => request.status)).toEqual([200, 200]);
    },
    600_000,
  );

  step(
    "install the published release, which systemd then runs, and wait until the API server is ready",
    async () => {
      const double = fs.readFileSync(DOUBLE_BEFORE);
      publishRelease(release, releaseUrls(program), double, double);
      const results = await runSteps(operator, program.steps);
      for (const declared of program.steps) expectOk(declared.name, results.get(declared.name));
      expect(results.get("ssh-k0s-install-k0s")!.stdout.trim().split("\n").pop()).toBe(versionOf(DOUBLE_BEFORE));
      expect(installedState()).toMatchObject({ binary: sha256(double), download: "absent" });
      expect(hostFile("etc/k0s/k0s.yaml")?.toString()).toBe(program.step("k0s-config").content!.toString());
      // Monitoring's data directory, ready for the kubelet to hand to the pod's user.
      expect(droplet.exec("stat", "-c", "%U %a", MONITORING_DATA_DIR).trim()).toBe("root 700");
      expect(droplet.exec("systemctl", "is-enabled", "k0scontroller").trim()).toBe("enabled");
      expect(droplet.exec("systemctl", "is-active", "k0scontroller").trim()).toBe("active");
      expect(calls().filter((argv) => argv[1] === "install")).toEqual([
        ["k0s", "install", "controller", "--single", "-c", "/etc/k0s/k0s.yaml"],
      ]);
      expect(calls().some((argv) => argv[1] === "controller")).toBe(true);
    },
    600_000,
  );

  step(
    "fetch the admin kubeconfig, which the program exports as a secret pointing at the host, and the API server accepts",
    async () => {
      const fetched = expectOk("admin-kubeconfig", await runStep(operator, program.step("admin-kubeconfig"))).stdout;
      // The engine hands the step's stdout back to the program: load it again with that output.
      const after = await declaredSshSteps(STACK, config, fetched);
      const { value, secret } = await promiseOf(after.run.outputs.kubeconfig as pulumi.Output<string>);
      expect(secret).toBe(true);
      const exported = parse(value);
      expect(exported.clusters[0].cluster.server).toBe(`https://${DROPLET_ADDRESS}:6443`);
      // Through the host's API port, with the exported credentials. The harness's API server has a
      // certificate for localhost (which SANs k0s's certificate covers is k0s's to decide), so the
      // name checked is localhost while the connection goes to the host's address.
      const pem = (field: string, data: string) => {
        const file = path.join(operator.dir, field);
        fs.writeFileSync(file, Buffer.from(data, "base64"), { mode: 0o600 });
        return file;
      };
      const user = exported.users[0].user;
      const credentials = [
        ...["--cacert", pem("ca", exported.clusters[0].cluster["certificate-authority-data"])],
        ...["--cert", pem("cert", user["client-certificate-data"]), "--key", pem("key", user["client-key-data"])],
        ...["--connect-to", `localhost:6443:${DROPLET_ADDRESS}:6443`],
      ];
      const version = droplet.internet.run("curl", "-fsS", ...credentials, "https://localhost:6443/version");
      expect(JSON.parse(version).gitVersion).toMatch(/^v1\.\d+\.\d+/);
    },
    120_000,
  );

  step(
    "run again with nothing changed on the host: no download, no second install, the same files and kubeconfig",
    async () => {
      const state = installedState();
      const requests = release.requests.length;
      const installed = installs();
      const kubeconfig = (await runStep(operator, program.step("admin-kubeconfig"))).stdout;
      const results = await runSteps(operator, program.steps);
      for (const declared of program.steps) expectOk(declared.name, results.get(declared.name));
      expect(installedState()).toEqual(state);
      expect(release.requests.length).toBe(requests);
      expect(installs()).toBe(installed);
      expect(results.get("ssh-k0s-admin-kubeconfig")!.stdout).toBe(kubeconfig);
    },
    600_000,
  );

  step(
    "refuse an upgrade whose download is tampered with: the installed k0s, its unit, its config and its run stay",
    async () => {
      const upgrade = await declaredSshSteps(STACK, { ...config, k0sVersion: NEXT_VERSION });
      const double = fs.readFileSync(DOUBLE_BEFORE);
      publishRelease(release, releaseUrls(upgrade), Buffer.concat([double, Buffer.from("tampered")]), double);
      const state = installedState();
      const startedAt = k0sStartedAt();
      const installed = installs();
      const results = await runSteps(operator, upgrade.steps);
      const install = results.get("ssh-k0s-install-k0s")!;
      expect(install.status).toBe(1);
      expect(install.stderr).toContain(
        `refusing to install k0s ${NEXT_VERSION}: its sha256 is ${sha256(Buffer.concat([double, Buffer.from("tampered")]))}`,
      );
      expect(installedState()).toEqual(state);
      expect(k0sStartedAt()).toBe(startedAt);
      expect(installs()).toBe(installed);
    },
    600_000,
  );

  step(
    "leave a unit that systemd starts again after a reboot, and the API server ready behind it",
    async () => {
      const controllers = calls().filter((argv) => argv[1] === "controller").length;
      await droplet.reboot();
      await waitFor(
        "k0scontroller to be active after the reboot",
        () => droplet.exec("systemctl", "is-active", "k0scontroller").trim() === "active" || undefined,
        60_000,
      );
      expect(calls().filter((argv) => argv[1] === "controller").length).toBe(controllers + 1);
      await waitFor(
        "the API server behind the double to be ready",
        () => droplet.exec("/usr/local/bin/k0s", "kubectl", "get", "--raw=/readyz").trim() === "ok" || undefined,
        60_000,
      );
    },
    300_000,
  );
});

describe("a non-root sshUser", () => {
  /** An account that logs in with the operator's key, with passwordless sudo or without any. */
  const addUser = (name: string, sudo: boolean) => {
    const home = `/home/${name}`;
    droplet.exec("useradd", "--create-home", "--shell", "/bin/bash", name);
    droplet.exec("install", "-d", "-m", "0700", "-o", name, "-g", name, `${home}/.ssh`);
    droplet.exec("install", "-m", "0600", "-o", name, "-g", name, "/root/.ssh/authorized_keys", `${home}/.ssh/authorized_keys`);
    if (sudo)
      droplet.exec("sh", "-c", `echo '${name} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/${name} && chmod 0440 /etc/sudoers.d/${name}`);
    return declaredSshSteps(STACK, { ...config, sshUser: name });
  };

  step(
    "with passwordless sudo runs every step as root does: same files, no second install, the same kubeconfig, uploads into a directory it owns",
    async () => {
      const asOps = await addUser("ops", true);
      expect(asOps.steps.map((declared) => declared.connection.user)).toEqual(asOps.steps.map(() => "ops"));
      const state = installedState();
      const installed = installs();
      const kubeconfig = (await runStep(operator, program.step("admin-kubeconfig"))).stdout;
      const results = await runSteps(operator, asOps.steps);
      for (const declared of asOps.steps) expectOk(declared.name, results.get(declared.name));
      expect(installedState()).toEqual(state);
      expect(installs()).toBe(installed);
      expect(results.get("ssh-k0s-admin-kubeconfig")!.stdout).toBe(kubeconfig);
      expect(droplet.exec("stat", "-c", "%U %a", "/var/lib/k0s-platform/upload").trim()).toBe("ops 700");
      expect(droplet.exec("stat", "-c", "%U %a", "/etc/k0s/k0s.yaml").trim()).toBe("root 600");
    },
    600_000,
  );

  step("without it stops at the first step, saying what to configure, and the next steps never run", async () => {
    const asGuest = await addUser("guest", false);
    const results = await runSteps(operator, asGuest.steps);
    const waited = results.get("ssh-k0s-wait-for-host")!;
    expect(waited.status).toBe(1);
    expect(waited.stderr).toContain(
      "sshUser guest must be root or run sudo without a password (a NOPASSWD entry in /etc/sudoers.d) for the install steps",
    );
    expect([...results.keys()]).toEqual(["ssh-k0s-wait-for-host"]);
  });
});

describe("waits that end in bounded time", () => {
  step(
    "a host whose first boot never finishes, and a k0s that never gets ready, fail within the bounds the scripts declare, saying what they waited for",
    async () => {
      // The boot marker gone (cloud-init never finishing) and every API connection refused.
      fs.rmSync(onHost("var/lib/cloud/instance/boot-finished"));
      await rehearsal.bridge.pause();
      const bound = (script: string) => Number(/timeout (\d+) /.exec(script)![1]);
      const [waited, installed] = await Promise.all([
        runStep(operator, program.step("wait-for-host")),
        runStep(operator, program.step("install-k0s")),
      ]);
      await rehearsal.bridge.resume();
      fs.writeFileSync(onHost("var/lib/cloud/instance/boot-finished"), "restored by the rehearsal\n");
      console.log(`bounded waits: wait-for-host ${waited.seconds.toFixed(0)} s, install-k0s ${installed.seconds.toFixed(0)} s`);
      for (const [result, script, message] of [
        [waited, program.step("wait-for-host").create!, "the host's first boot (cloud-init) did not finish within 300 s"],
        [installed, program.step("install-k0s").create!, "did not become ready within 360 s: see journalctl -u k0scontroller"],
      ] as const) {
        // The script's own verdict, not timeout(1)'s silent 124.
        expect(result.status).toBe(1);
        expect(result.stderr).toContain(message);
        expect(result.seconds).toBeGreaterThanOrEqual(bound(script));
        expect(result.seconds).toBeLessThan(bound(script) + 30);
      }
    },
    900_000,
  );
});

describe("upgrading k0s in place, one minor version at a time", () => {
  const installedVersion = () => droplet.exec("/usr/local/bin/k0s", "version").trim();

  step(
    "refuse a skipped minor and a downgrade on the host before anything there changes, and in the program before any step runs",
    async () => {
      const running = installedVersion();
      expect(running).toBe(versionOf(DOUBLE_BEFORE));
      for (const [wanted, reason] of [
        ["v1.37.0+k0s.0", "Kubernetes upgrades one minor version at a time; set k0sVersion to a v1.36.x release first"],
        ["v1.34.9+k0s.0", "that is a downgrade"],
      ]) {
        // A stack whose state lost the version (or a run that skipped the preview): the host decides.
        const declared = await declaredSshSteps(STACK, { ...config, k0sVersion: wanted });
        const state = installedState();
        const startedAt = k0sStartedAt();
        const requests = release.requests.length;
        const install = await runStep(operator, declared.step("install-k0s"));
        expect(install.status).toBe(1);
        // The host's words are the program's: one rule, checked in both places.
        expect(install.stderr.trim()).toBe(upgradeProblem(running, wanted));
        expect(install.stderr).toContain(`refusing to go from k0s ${running} to ${wanted}: ${reason}`);
        expect(installedState()).toEqual(state);
        expect(k0sStartedAt()).toBe(startedAt);
        expect(release.requests.length).toBe(requests);
        // With the state: the program refuses before declaring a step.
        await expect(declaredSshSteps(STACK, { ...config, k0sVersion: wanted }, undefined, running)).rejects.toThrow(
          `k0s-platform:k0sVersion: refusing to go from k0s ${running} to ${wanted}: ${reason}`,
        );
      }
    },
    300_000,
  );

  step(
    "upgrade to the default, the next minor: the new binary after its checksum, the same unit, k0s restarted and ready, the kubeconfig unchanged",
    async () => {
      const running = installedVersion();
      const upgrade = await declaredSshSteps(STACK, { ...rehearsal.config, k0sVersion: versionOf(DOUBLE) }, undefined, running);
      expect(upgrade.step("install-k0s").create).toContain(`want='${versionOf(DOUBLE)}'`);
      const double = fs.readFileSync(DOUBLE);
      publishRelease(release, releaseUrls(upgrade), double, double);
      const { unit, config: k0sConfig } = installedState();
      const startedAt = k0sStartedAt();
      const installed = installs();
      const kubeconfig = (await runStep(operator, program.step("admin-kubeconfig"))).stdout;
      const results = await runSteps(operator, upgrade.steps);
      for (const declared of upgrade.steps) expectOk(declared.name, results.get(declared.name));
      const install = results.get("ssh-k0s-install-k0s")!;
      console.log(
        `k0s ${running} -> ${versionOf(DOUBLE)}: the install step took ${install.seconds.toFixed(1)} s (the test double restarts at once; k0s's own restart is longer)`,
      );
      expect(install.stdout.trim().split("\n").pop()).toBe(versionOf(DOUBLE));
      expect(installedVersion()).toBe(versionOf(DOUBLE));
      expect(installedState()).toEqual({ binary: sha256(double), download: "absent", unit, config: k0sConfig });
      expect(installs()).toBe(installed);
      expect(k0sStartedAt()).not.toBe(startedAt);
      expect(droplet.exec("/usr/local/bin/k0s", "kubectl", "get", "--raw=/readyz").trim()).toBe("ok");
      expect(results.get("ssh-k0s-admin-kubeconfig")!.stdout).toBe(kubeconfig);
      // Downloaded once, the binary and its release's sums; a second run downloads nothing.
      const requests = release.requests.length;
      const again = await runSteps(operator, upgrade.steps);
      for (const declared of upgrade.steps) expectOk(declared.name, again.get(declared.name));
      expect(release.requests.length).toBe(requests);
      expect(installedVersion()).toBe(versionOf(DOUBLE));
    },
    600_000,
  );
});

describe("backups to S3-compatible storage", () => {
  const SECRET = "rehearsal-secret/key+0=";
  const backups = (accessKeyId: string, retention: number) =>
    declaredSshSteps(
      STACK,
      {
        ...rehearsal.config,
        backup: { endpoint: rehearsal.s3.endpoint, bucket: rehearsal.s3.bucket, accessKeyId, retention, schedule: "*-*-* 03:00:00" },
        backupSecretAccessKey: SECRET,
      },
      undefined,
      installedVersion(),
    );
  const installedVersion = () => droplet.exec("/usr/local/bin/k0s", "version").trim();
  /** One run of the backup service, as its timer would start it; the result systemctl reports. */
  const backUpNow = () => {
    const status = Number(droplet.exec("sh", "-c", "systemctl start k0s-platform-backup.service >/dev/null 2>&1; echo $?").trim());
    return { status, journal: droplet.exec("journalctl", "-u", "k0s-platform-backup.service", "--no-pager", "-o", "cat") };
  };

  step(
    "schedule k0s backups with a systemd timer the program installs, the credentials in a 0600 file and on no command line",
    async () => {
      const backedUp = await backups(rehearsal.s3.accessKeyId, 2);
      const schedule = backedUp.step("backup-schedule");
      expect(schedule.create).not.toContain(SECRET);
      expect(schedule.stdin).toContain(`BACKUP_SECRET_ACCESS_KEY='${SECRET}'`);
      const result = expectOk("backup-schedule", await runStep(operator, schedule));
      expect(result.stdout).toContain("k0s-platform-backup.timer");
      expect(droplet.exec("systemctl", "is-enabled", "k0s-platform-backup.timer").trim()).toBe("enabled");
      expect(droplet.exec("systemctl", "is-active", "k0s-platform-backup.timer").trim()).toBe("active");
      expect(droplet.exec("systemctl", "show", "k0s-platform-backup.timer", "-p", "TimersCalendar").trim()).toContain("*-*-* 03:00:00");
      expect(droplet.exec("stat", "-c", "%U %a", "/etc/k0s-platform/backup.env").trim()).toBe("root 600");
      // Run again (an unchanged `up` would not even connect): the same files, the timer still on.
      expectOk("backup-schedule", await runStep(operator, schedule));
      expect(droplet.exec("systemctl", "is-active", "k0s-platform-backup.timer").trim()).toBe("active");
    },
    300_000,
  );

  step(
    "upload what k0s backup wrote to the S3 server, signed, and keep only the newest `retention`, leaving nothing on the host",
    async () => {
      const keys: string[] = [];
      for (let run = 0; run < 3; run++) {
        // k0s names an archive by the second it was taken.
        if (run > 0) await new Promise((resolve) => setTimeout(resolve, 1_100));
        const result = backUpNow();
        expect(result.status, result.journal).toBe(0);
        keys.push(
          /uploaded (\S+) to/.exec(
            result.journal
              .trim()
              .split("\n")
              .filter((line) => line.startsWith("uploaded"))
              .pop()!,
          )![1],
        );
      }
      expect(keys.every((key) => key.startsWith("k0s-platform-rehearsal/k0s_backup_"))).toBe(true);
      const puts = rehearsal.s3.requests().filter((line) => line.startsWith("PUT "));
      expect(puts).toEqual(keys.map((key) => `PUT /${rehearsal.s3.bucket}/${key} 200`));
      expect(rehearsal.s3.requests()).toContain(`DELETE /${rehearsal.s3.bucket}/${keys[0]} 204`);
      expect(droplet.exec("cat", "/var/lib/k0s-platform/backups.list").trim().split("\n")).toEqual(keys.slice(1));
      expect(droplet.exec("sh", "-c", "ls /var/lib/k0s-platform | grep -c '^backup\\.' || true").trim()).toBe("0");
      // What the bucket holds, asked over the S3 API from the internet as an operator would.
      expect(rehearsal.s3.endpoint).toBe("https://s3.rehearsal.test:9000");
      const signed = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", `${rehearsal.s3.accessKeyId}:${SECRET}`];
      const trusted = [
        "--cacert",
        path.join(droplet.dir, "release-pki", "ca.crt"),
        "--resolve",
        `s3.rehearsal.test:9000:${INTERNET_ADDRESS}`,
      ];
      const { bucket } = rehearsal.s3;
      const listing = droplet.internet.run("curl", "-fsS", ...trusted, ...signed, `https://s3.rehearsal.test:9000/${bucket}?list-type=2`);
      expect([...listing.matchAll(/<Key>([^<]+)<\/Key>/g)].map((match) => match[1]).sort()).toEqual(keys.slice(1).sort());
    },
    300_000,
  );

  step("fail a run whose key the storage refuses, saying so, and keep the list as it was", async () => {
    expectOk("backup-schedule", await runStep(operator, (await backups("NOTTHEKEY", 2)).step("backup-schedule")));
    const list = droplet.exec("cat", "/var/lib/k0s-platform/backups.list");
    const result = backUpNow();
    expect(result.status).not.toBe(0);
    expect(result.journal).toMatch(/The requested URL returned error: 403/);
    expect(droplet.exec("cat", "/var/lib/k0s-platform/backups.list")).toBe(list);
    expect(rehearsal.s3.requests().pop()).toMatch(/^PUT \S+ 403$/);
  });
});

describe("the private key", () => {
  step("is nowhere on the host's files", () => {
    const line = privateKey.split("\n").filter((text) => text.length > 40)[1];
    const grep = 'grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e "$1" "$2" || true';
    const found = run("sh", ["-c", grep, "grep", line, droplet.rootfs]);
    expect(found.trim()).toBe("");
  });
});

describe("teardown", () => {
  step(
    "leaves no process, mount, network namespace, cgroup or iptables rule behind",
    async () => {
      stopped = true;
      const dir = droplet.dir;
      await rehearsal.stop();
      expect(fs.existsSync(dir)).toBe(false);
      const nothing = { processes: [], mounts: [], networkNamespaces: [], cgroups: [], iptables: [] };
      expect(leftoversSince(before, path.basename(dir))).toEqual(nothing);
    },
    120_000,
  );
});

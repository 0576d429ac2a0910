/**
 * The SSH-host rung's rehearsal, set up and torn down: the droplet, the harness's API server and the
 * release server on the rehearsal's internet, the program's SSH steps read for a user's ssh stack,
 * and what only a rehearsal needs on the host (marked as such where it is written).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startControlPlane, type ControlPlane } from "../apiserver/controlPlane";
import { renderKubeconfig } from "../harness/kubeClient";
import { run, startDaemon, waitFor, type Daemon } from "../harness/processes";
import { TOOLCHAIN, TOOLCHAIN_BIN } from "../harness/toolchain";
import { seedStackConfig } from "../../test/lib/seedStacks";
import { DROPLET_ADDRESS, INTERNET_ADDRESS, startDroplet, type Droplet } from "./droplet";
import { declaredSshSteps, type DeclaredProgram, type Operator } from "./steps";
import { bridgeToApiServer, relayFromInternet, startReleaseServer, type ApiBridge, type ReleaseServer } from "./testNetwork";

export interface Rehearsal {
  readonly droplet: Droplet;
  readonly plane: ControlPlane;
  /** The API server's relay, to pause as an API server that never comes up. */
  readonly bridge: ApiBridge;
  readonly release: ReleaseServer;
  /** Where the operator's OpenSSH client runs: the rehearsal's internet. */
  readonly operator: Operator;
  readonly privateKey: string;
  /** The ssh stack's config, as a user sets it. */
  readonly config: Record<string, unknown>;
  /** The program's SSH steps for that config. */
  readonly program: DeclaredProgram;
  /** S3-compatible storage on the rehearsal's internet, where backups go in place of Spaces. */
  readonly s3: S3Storage;
  stop(): Promise<void>;
}

export interface S3Storage {
  /** What a user's `backup` block names: the endpoint (https, the rehearsal CA's), the bucket and the key's id. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  /** Every request the server answered, as `METHOD PATH STATUS`. */
  requests(): string[];
}

/** The S3 server's name and port on the rehearsal's internet. */
const S3_HOST = "s3.rehearsal.test";
const S3_PORT = 9000;

export const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** The k0s download for the rehearsal's amd64 host and its checksum file, as the install script names them. */
export function releaseUrls(declared: DeclaredProgram): { binary: string; sums: string } {
  const script = declared.step("install-k0s").create!;
  const version = /^want='([^']+)'$/m.exec(script)?.[1];
  const release = /'(https:\/\/[^']+\/)'"\$asset"/.exec(script)?.[1];
  const sums = /'(https:\/\/[^']+\/sha256sums\.txt)'/.exec(script)?.[1];
  if (version === undefined || release === undefined || sums === undefined)
    throw new Error(`the install script downloads no binary and sums:\n${script}`);
  return { binary: `${release}k0s-${version}-amd64`, sums };
}

/** Publishes `content` as the release at `urls`, with a sha256sums.txt that lists `listed`'s sha256. */
export function publishRelease(release: ReleaseServer, urls: { binary: string; sums: string }, content: Buffer, listed: Buffer): void {
  const asset = urls.binary.split("/").pop()!;
  release.publish(urls.binary, content);
  release.publish(urls.sums, `${sha256(listed)}  ${asset}\n${"0".repeat(64)}  ${asset}.sig\n`);
}

export async function startRehearsal(stack: string): Promise<Rehearsal> {
  const keys = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-ssh-keys-"));
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ops@rehearsal", "-f", path.join(keys, "id_ed25519")]);
  const privateKey = fs.readFileSync(path.join(keys, "id_ed25519"), "utf8");
  const publicKey = fs.readFileSync(path.join(keys, "id_ed25519.pub"), "utf8");
  fs.rmSync(keys, { recursive: true });
  const droplet = await startDroplet({ rootfsTar: path.join(TOOLCHAIN, "droplet-rootfs.tar"), authorizedKey: publicKey });
  const relays: Daemon[] = [];
  let plane: ControlPlane | undefined;
  let bridge: ApiBridge | undefined;
  let release: ReleaseServer | undefined;
  const stop = async () => {
    for (const relay of relays) await relay.stop(1_000);
    await release?.close();
    await bridge?.close();
    await plane?.stop();
    await droplet.stop();
  };
  try {
    plane = await startControlPlane();
    bridge = await bridgeToApiServer(path.join(droplet.dir, "api.sock"), plane.server, droplet.dir);
    relays.push(await relayFromInternet(droplet.internet, 6443, path.join(droplet.dir, "api.sock"), droplet.dir));

    // A user's ssh stack with the remote stack's environments; k0s unpinned, so the release decides.
    const { environments, flux } = seedStackConfig("remote");
    const config = {
      target: "ssh",
      sshHost: DROPLET_ADDRESS,
      sshHostKey: droplet.hostKey(),
      sshPrivateKey: privateKey,
      // The operator's address as the droplet sees it: the host firewall admits it to the API.
      adminCidrs: [`${INTERNET_ADDRESS}/32`],
      acmeEmail: "platform@acme-consulting.eu",
      environments,
      flux,
    };
    const program = await declaredSshSteps(stack, config);
    const hosts = [...new Set([...Object.values(releaseUrls(program)).map((url) => new URL(url).hostname), S3_HOST])];
    release = await startReleaseServer(droplet.dir, path.join(droplet.dir, "release.sock"), hosts);
    relays.push(await relayFromInternet(droplet.internet, 443, path.join(droplet.dir, "release.sock"), droplet.dir));
    // The S3 server presents the release server's certificate, which names it too.
    const s3Socket = path.join(droplet.dir, "s3.sock");
    const s3 = { endpoint: `https://${S3_HOST}:${S3_PORT}`, bucket: "rehearsal-backups", accessKeyId: "REHEARSALKEY" };
    const s3Server = startDaemon(
      "s3-test-server",
      path.join(TOOLCHAIN_BIN, "s3-test-server"),
      [
        ...["-listen", s3Socket, "-cert", path.join(droplet.dir, "release-pki", "server.crt")],
        ...["-key", path.join(droplet.dir, "release-pki", "server.key"), "-access-key-id", s3.accessKeyId, "-bucket", s3.bucket],
      ],
      { logDir: droplet.dir },
    );
    relays.push(s3Server);
    await waitFor("the S3 server's socket", () => (fs.existsSync(s3Socket) ? true : undefined), 10_000, 100);
    relays.push(await relayFromInternet(droplet.internet, S3_PORT, s3Socket, droplet.dir));

    // Rehearsal only: the release's host names resolve to the internet's address and its CA is
    // trusted; the test double's stand-in for k0s's PKI is the harness API server's admin identity.
    const onHost = (file: string) => path.join(droplet.rootfs, file);
    fs.appendFileSync(onHost("etc/hosts"), hosts.map((host) => `${INTERNET_ADDRESS} ${host}\n`).join(""));
    fs.appendFileSync(onHost("etc/ssl/certs/ca-certificates.crt"), release.caCertificate);
    const seed = onHost("var/lib/k0s-test-double");
    fs.mkdirSync(seed, { mode: 0o700 });
    fs.writeFileSync(path.join(seed, "admin.conf"), adminKubeconfig(plane, "https://localhost:6443"), { mode: 0o600 });
    fs.writeFileSync(path.join(seed, "upstream"), `${INTERNET_ADDRESS}:6443\n`);
    const operator = {
      dir: fs.mkdtempSync(path.join(droplet.dir, "operator-")),
      wrap: (argv: readonly string[]) => droplet.internet.wrap(argv),
    };
    const requests = () =>
      fs
        .readFileSync(s3Server.logPath, "utf8")
        .split("\n")
        .map((line) => /^\S+ \S+ ((GET|PUT|DELETE|HEAD|POST) \S+ \d+)$/.exec(line)?.[1])
        .filter((line): line is string => line !== undefined);
    return { droplet, plane, bridge, release, operator, privateKey, config, program, s3: { ...s3, requests }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The harness API server's admin kubeconfig, at `server`, as k0s keeps admin.conf. */
function adminKubeconfig(controlPlane: ControlPlane, server: string): string {
  return renderKubeconfig({ server, context: "Default", user: "admin", ...controlPlane.tls });
}

/**
 * What the droplet reaches on the rehearsal's "internet" (a network namespace the test creates), and
 * nothing else: a release server at the host names the program's scripts download from, and the
 * harness's API server. Both are served by this process on Unix sockets in the droplet's run
 * directory; a relay inside the internet namespace accepts TCP there and passes each connection to
 * the socket, so nothing listens on this machine's own network (TLS runs end to end through it).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import type { NetworkNamespace } from "../harness/network";
import { run, startDaemon, StopWaiting, tail, waitFor, type Daemon } from "../harness/processes";

/**
 * A relay process: accepts on `from` (a TCP port, or a Unix socket path) and passes each connection
 * to `to` (`host:port`, or a Unix socket path). A process of its own, so that this process's
 * synchronous calls (nsenter, curl) can go through it.
 */
async function startRelay(name: string, from: string, to: string, logDir: string, wrap = (argv: string[]) => argv): Promise<Daemon> {
  const program = [
    'const net = require("node:net");',
    "const [from, to] = process.argv.slice(1);",
    'const at = (where) => (where.includes("/") ? [where] : [Number(where.split(":").pop()), where.split(":").slice(0, -1).join(":") || undefined]);',
    "net.createServer((client) => {",
    "  const upstream = net.connect(...at(to));",
    '  for (const [a, b] of [[client, upstream], [upstream, client]]) { a.pipe(b); a.on("error", () => b.destroy()); }',
    "}).listen(...at(from).slice(0, 1));",
  ].join("\n");
  const [command, ...args] = wrap([process.execPath, "-e", program, from, to]);
  const daemon = startDaemon(name, command, args, { logDir });
  const [ss, ...query] = wrap(["ss", "-Htln", `sport = :${from}`]);
  const listening = () => (from.includes("/") ? fs.existsSync(from) : run(ss, query).trim() !== "") || undefined;
  await waitFor(
    `the ${name} relay`,
    () => {
      if (daemon.dead()) throw new StopWaiting(`the ${name} relay exited:\n${tail(daemon.logPath)}`);
      return listening();
    },
    10_000,
    50,
  );
  return daemon;
}

/** TCP `port` of the internet namespace, relayed to the Unix socket `socket` here. */
export function relayFromInternet(internet: NetworkNamespace, port: number, socket: string, logDir: string): Promise<Daemon> {
  return startRelay(`internet-${port}`, String(port), socket, logDir, (argv) => internet.wrap(argv));
}

/** The API server's end of its relay: the Unix socket `socket` to `server` (https://127.0.0.1:<port>). */
export interface ApiBridge {
  /** Stops relaying: every connection is then refused, as by an API server that never comes up. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

export async function bridgeToApiServer(socket: string, server: string, logDir: string): Promise<ApiBridge> {
  const { host } = new URL(server);
  let daemon: Daemon | undefined;
  const start = async () => {
    fs.rmSync(socket, { force: true });
    daemon = await startRelay("api-server", socket, host, logDir);
  };
  const stop = async () => {
    await daemon?.stop(1_000);
    daemon = undefined;
  };
  await start();
  return { pause: stop, resume: start, close: stop };
}

export interface ReleaseServer {
  /** The CA that signed the server's certificate, for the droplet's trust store. */
  readonly caCertificate: string;
  /** Every request so far: host, path and the status answered. */
  readonly requests: { host: string; path: string; status: number }[];
  /** Serves `content` at `url` (https://<one of the hosts>/<path>) until replaced. */
  publish(url: string, content: Buffer | string): void;
  close(): Promise<void>;
}

/**
 * An HTTPS server for `hosts` (the names the program's scripts download from, resolved to the
 * internet's address on the droplet), with a certificate from a CA minted for this run.
 */
export function startReleaseServer(dir: string, socket: string, hosts: readonly string[]): Promise<ReleaseServer> {
  const pki = path.join(dir, "release-pki");
  fs.mkdirSync(pki);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: pki, stdio: ["ignore", "ignore", "pipe"] });
  // A CA, then the server's certificate for every host, both P-256 and valid two days.
  openssl(
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt"],
    ...["-subj", "/CN=k0s-platform rehearsal release CA", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE"],
  );
  openssl(
    ...["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr"],
    ...["-subj", `/CN=${hosts[0]}`],
  );
  fs.writeFileSync(
    path.join(pki, "server.ext"),
    `subjectAltName=${hosts.map((host) => `DNS:${host}`).join(",")}\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(
    ...["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"],
    ...["-extfile", "server.ext", "-out", "server.crt"],
  );
  const read = (file: string) => fs.readFileSync(path.join(pki, file), "utf8");
  const files = new Map<string, Buffer>();
  const requests: ReleaseServer["requests"] = [];
  const server = https.createServer({ key: read("server.key"), cert: `${read("server.crt")}${read("ca.crt")}` }, (request, response) => {
    const host = (request.headers.host ?? "").replace(/:\d+$/, "");
    const body = files.get(`${host}${request.url}`);
    const status = body === undefined ? 404 : 200;
    requests.push({ host, path: request.url ?? "", status });
    response.writeHead(status, { "content-type": "application/octet-stream" });
    response.end(body ?? "not found\n");
  });
  return new Promise((resolve) =>
    server.listen(socket, () =>
      resolve({
        caCertificate: read("ca.crt"),
        requests,
        publish(url, content) {
          const { host, pathname } = new URL(url);
          if (!hosts.includes(host)) throw new Error(`${host} is not served by the release server`);
          files.set(`${host}${pathname}`, Buffer.from(content));
        },
        close: () => new Promise((done) => server.close(() => done())),
      }),
    ),
  );
}

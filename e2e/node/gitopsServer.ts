/**
 * What a GitOps cluster talks to on the internet, served on the LAN side of a test node: private
 * Git repositories over smart HTTPS (Git's own `git http-backend`, as behind any Git host), which
 * answer only a request that carries the token, the same repositories over SSH to deploy keys only
 * (git-ssh-server, our own small server on golang.org/x/crypto/ssh), a Helm chart repository (index.yaml plus
 * packaged charts) over plain HTTP, and a webhook that takes Alertmanager's messages, as a chat or
 * pager service would, at a path nobody guesses. The servers run in this process on Unix sockets; socat publishes
 * them on the LAN address inside the LAN network namespace, where the node's pods reach them through
 * their default route. The HTTPS certificate comes from a per-run CA, as a self-hosted Git server's
 * would.
 */
import { spawn } from "node:child_process";
import { randomBytes, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { certificateAuthority, issue, subjectAltNames } from "../harness/pki";
import type { TestNode } from "./node";
import { LAN_ADDRESS, NODE_ADDRESS } from "./node";
import { run, startDaemon, waitFor, type Daemon } from "../harness/processes";
import { TOOLCHAIN_BIN } from "../harness/toolchain";

export interface GitopsServer {
  /** The chart repository's base URL as the node's pods see it: http://10.213.0.1:8080/charts. */
  readonly chartsUrl: string;
  /** The Git server's base URL: https://10.213.0.1:8443, repositories under <gitUrl>/git/<name>.git. */
  readonly gitUrl: string;
  /** The CA that signed the Git server's certificate (PEM), as a user gives it in flux.caCertificate. */
  readonly caCertificate: string;
  /** The only credentials the Git server accepts: a user and a read token, as a Git host issues them. */
  readonly username: string;
  readonly token: string;
  /** Directory of bare repositories served under <gitUrl>/git/<name>.git, and over SSH. */
  readonly gitRoot: string;
  /** A repository's URL over SSH, where only a deploy key the server lists may fetch. */
  sshUrl(name: string): string;
  /** The SSH side's host key as known_hosts pins it, as a Git host publishes its keys. */
  readonly knownHosts: string;
  /** Adds a deploy key, as an operator pastes one into the Git host. */
  addDeployKey(publicKey: string): void;
  /** The alert webhook's URL, a secret as a chat service's is: the stack's alertWebhookUrl. */
  readonly alertWebhookUrl: string;
  /** Waits for the webhook to take an alert of `status` whose labels include `labels`, sent after `since`. */
  alertDelivered(
    status: DeliveredAlert["status"],
    labels: Record<string, string>,
    since: number,
    timeoutMs: number,
  ): Promise<{ alert: DeliveredAlert; receivedAt: number; receiver: string }>;
  /** Requests so far: charts served, Git requests served, Git requests refused for their credentials. */
  readonly requests: { git: number; charts: number; refused: number };
  stop(): Promise<void>;
}

/** One alert of an Alertmanager webhook message (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). */
export interface DeliveredAlert {
  readonly status: "firing" | "resolved";
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
}

interface AlertMessage {
  readonly receivedAt: number;
  readonly receiver: string;
  readonly alerts: DeliveredAlert[];
}

const CHARTS_PORT = 8080;
const ALERTS_PORT = 8090;
const GIT_PORT = 8443;
const GIT_SSH_PORT = 2222;

export async function startGitopsServer(node: TestNode, options: { chartsDir: string }): Promise<GitopsServer> {
  const gitRoot = path.join(node.dir, "git");
  fs.mkdirSync(gitRoot, { recursive: true });
  const requests = { git: 0, charts: 0, refused: 0 };
  const pki = path.join(node.dir, "gitops-pki");
  fs.mkdirSync(pki, { recursive: true });
  certificateAuthority(pki, "ca", "/CN=gitops-test-ca");
  issue(pki, "ca", "git", `/CN=${LAN_ADDRESS}`, "serverAuth", subjectAltNames([LAN_ADDRESS]));
  const username = "flux";
  const token = randomBytes(24).toString("hex");
  const expected = Buffer.from(`Basic ${Buffer.from(`${username}:${token}`).toString("base64")}`);

  const charts = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://gitops");
    if (!url.pathname.startsWith("/charts/")) return void response.writeHead(404).end();
    requests.charts++;
    serveFile(options.chartsDir, url.pathname.slice("/charts/".length), response);
  });
  const git = https.createServer(
    { key: fs.readFileSync(path.join(pki, "git.key")), cert: fs.readFileSync(path.join(pki, "git.crt")) },
    (request, response) => {
      const url = new URL(request.url ?? "/", "https://gitops");
      if (!url.pathname.startsWith("/git/")) return void response.writeHead(404).end();
      const given = Buffer.from(request.headers.authorization ?? "");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        requests.refused++;
        return void response.writeHead(401, { "www-authenticate": 'Basic realm="gitops"' }).end();
      }
      requests.git++;
      serveGit(gitRoot, url, request, response);
    },
  );
  const alertPath = `/alerts/${randomBytes(12).toString("hex")}`;
  const alertMessages: AlertMessage[] = [];
  const alerts = http.createServer((request, response) => {
    if (request.method !== "POST" || request.url !== alertPath) return void response.writeHead(404).end();
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      const message = JSON.parse(body) as { receiver: string; alerts: DeliveredAlert[] };
      alertMessages.push({ receivedAt: Date.now(), receiver: message.receiver, alerts: message.alerts });
      response.writeHead(200).end();
    });
  });
  const servers: [http.Server, number][] = [
    [charts, CHARTS_PORT],
    [git, GIT_PORT],
    [alerts, ALERTS_PORT],
  ];
  // The SSH side: its own host key, and deploy keys an operator adds (none at first).
  const sshDir = path.join(node.dir, "gitops-ssh");
  fs.mkdirSync(sshDir, { recursive: true });
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "gitops-test-host", "-f", path.join(sshDir, "host_key")]);
  const authorizedKeys = path.join(sshDir, "authorized_keys");
  fs.writeFileSync(authorizedKeys, "");
  const sshSocket = path.join(node.dir, `gitops-${GIT_SSH_PORT}.sock`);
  const daemons: Daemon[] = [
    startDaemon(
      "git-ssh-server",
      path.join(TOOLCHAIN_BIN, "git-ssh-server"),
      ["-listen", sshSocket, "-host-key", path.join(sshDir, "host_key"), "-authorized-keys", authorizedKeys, "-root", gitRoot],
      { logDir: node.dir },
    ),
  ];
  await waitFor("the Git server's SSH socket", () => (fs.existsSync(sshSocket) ? true : undefined), 10_000, 100);
  const sockets: [string, number][] = [[sshSocket, GIT_SSH_PORT]];
  for (const [server, port] of servers) {
    const socket = path.join(node.dir, `gitops-${port}.sock`);
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    sockets.push([socket, port]);
  }
  const publishers: Daemon[] = [...daemons];
  for (const [socket, port] of sockets) {
    publishers.push(
      startDaemon(
        `gitops-server-${port}`,
        "nsenter",
        ["-t", String(node.lanPid), "-n", "--", "socat", `TCP-LISTEN:${port},bind=${LAN_ADDRESS},fork,reuseaddr`, `UNIX-CONNECT:${socket}`],
        { logDir: node.dir },
      ),
    );
    await waitFor(
      `the GitOps server's port ${port} on the LAN`,
      () => (node.execOnLan("ss", ["-Hltn", `sport = :${port}`]).trim() ? true : undefined),
      10_000,
      100,
    );
  }
  return {
    chartsUrl: `http://${LAN_ADDRESS}:${CHARTS_PORT}/charts`,
    gitUrl: `https://${LAN_ADDRESS}:${GIT_PORT}`,
    caCertificate: fs.readFileSync(path.join(pki, "ca.crt"), "utf8"),
    username,
    token,
    gitRoot,
    sshUrl: (name) => `ssh://git@${LAN_ADDRESS}:${GIT_SSH_PORT}/${name}.git`,
    knownHosts: `[${LAN_ADDRESS}]:${GIT_SSH_PORT} ${fs.readFileSync(path.join(sshDir, "host_key.pub"), "utf8").split(" ").slice(0, 2).join(" ")}`,
    addDeployKey: (publicKey) => fs.appendFileSync(authorizedKeys, `${publicKey.trim()}\n`),
    alertWebhookUrl: `http://${LAN_ADDRESS}:${ALERTS_PORT}${alertPath}`,
    alertDelivered: (status, labels, since, timeoutMs) =>
      waitFor(
        `${status} ${JSON.stringify(labels)} at the alert webhook`,
        () => {
          for (const message of alertMessages.filter((entry) => entry.receivedAt >= since)) {
            const alert = message.alerts.find(
              (entry) => entry.status === status && Object.entries(labels).every(([key, value]) => entry.labels[key] === value),
            );
            if (alert !== undefined) return { alert, receivedAt: message.receivedAt, receiver: message.receiver };
          }
          // Said when the wait times out: what did arrive.
          const heard = alertMessages.flatMap((message) =>
            message.alerts.map((alert) => `${alert.status} ${JSON.stringify(alert.labels)}`),
          );
          throw new Error(`the webhook heard ${heard.length === 0 ? "nothing" : heard.join("; ")}`);
        },
        timeoutMs,
        1_000,
      ),
    requests,
    async stop() {
      for (const publisher of publishers) await publisher.stop(1_000);
      for (const [server] of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One CGI request to `git http-backend` (https://git-scm.com/docs/git-http-backend). */
function serveGit(root: string, url: URL, request: http.IncomingMessage, response: http.ServerResponse): void {
  const backend = spawn("git", ["http-backend"], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: url.pathname.slice("/git".length),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: request.method ?? "GET",
      CONTENT_TYPE: request.headers["content-type"] ?? "",
      GIT_PROTOCOL: String(request.headers["git-protocol"] ?? ""),
      REMOTE_ADDR: NODE_ADDRESS,
    },
  });
  request.pipe(backend.stdin);
  let head = Buffer.alloc(0);
  let headersSent = false;
  backend.stdout.on("data", (chunk: Buffer) => {
    if (headersSent) return void response.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) return;
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
      const [name, ...value] = line.split(":");
      if (name.toLowerCase() === "status") status = Number.parseInt(value.join(":").trim(), 10);
      else headers[name] = value.join(":").trim();
    }
    response.writeHead(status, headers);
    headersSent = true;
    response.write(head.subarray(end + 4));
  });
  backend.on("close", () => {
    if (!headersSent) response.writeHead(500);
    response.end();
  });
}

function serveFile(dir: string, name: string, response: http.ServerResponse): void {
  const file = path.join(dir, path.basename(name));
  if (!fs.existsSync(file)) return void response.writeHead(404).end();
  response.writeHead(200, { "content-type": file.endsWith(".yaml") ? "text/yaml" : "application/octet-stream" });
  fs.createReadStream(file).pipe(response);
}

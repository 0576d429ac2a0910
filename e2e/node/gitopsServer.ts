/**
 * What a GitOps cluster pulls from on the internet, served on the LAN side of a test node: Git
 * repositories over smart HTTP (Git's own `git http-backend`, as behind any Git host) and a Helm
 * chart repository (index.yaml plus packaged charts). The server runs in this process on a Unix
 * socket; socat publishes it on the LAN address inside the LAN network namespace, where the node's
 * pods reach it through their default route.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { TestNode } from "./node";
import { LAN_ADDRESS, NODE_ADDRESS } from "./node";
import { startDaemon, waitFor, type Daemon } from "../harness/processes";

export interface GitopsServer {
  /** Base URL as the node's pods see it, e.g. http://10.213.0.1:8080. */
  readonly url: string;
  /** Directory of bare repositories served under <url>/git/<name>.git. */
  readonly gitRoot: string;
  /** Requests served so far, by path prefix ("git", "charts"). */
  readonly requests: { git: number; charts: number };
  stop(): Promise<void>;
}

const PORT = 8080;

export async function startGitopsServer(node: TestNode, options: { chartsDir: string }): Promise<GitopsServer> {
  const gitRoot = path.join(node.dir, "git");
  fs.mkdirSync(gitRoot, { recursive: true });
  const socket = path.join(node.dir, "gitops.sock");
  const requests = { git: 0, charts: 0 };

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://gitops");
    if (url.pathname.startsWith("/git/")) {
      requests.git++;
      serveGit(gitRoot, url, request, response);
    } else if (url.pathname.startsWith("/charts/")) {
      requests.charts++;
      serveFile(options.chartsDir, url.pathname.slice("/charts/".length), response);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const publish: Daemon = startDaemon(
    "gitops-server",
    "nsenter",
    ["-t", String(node.lanPid), "-n", "--", "socat", `TCP-LISTEN:${PORT},bind=${LAN_ADDRESS},fork,reuseaddr`, `UNIX-CONNECT:${socket}`],
    { logDir: node.dir },
  );
  const url = `http://${LAN_ADDRESS}:${PORT}`;
  await waitFor(
    "the GitOps server on the LAN",
    () => (node.execOnLan("ss", ["-Hltn", `sport = :${PORT}`]).trim() ? true : undefined),
    10_000,
    100,
  );
  return {
    url,
    gitRoot,
    requests,
    async stop() {
      await publish.stop(1_000);
      await new Promise<void>((resolve) => server.close(() => resolve()));
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

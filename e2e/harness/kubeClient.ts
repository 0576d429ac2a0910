/**
 * A minimal Kubernetes API client for the e2e assertions: JSON over HTTPS with the cluster's admin
 * certificate, to 127.0.0.1 only (directly, or through a Unix socket forwarded into the network
 * namespace a test node listens in). Small enough to read at a glance, and it keeps the test
 * independent of any client library's notion of the cluster.
 */
import * as https from "node:https";

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly body: T;
}

export interface KubeClientOptions {
  readonly server: string;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  /** A Unix socket that leads to `server`'s 127.0.0.1 (see e2e/node/node.ts). */
  readonly socketPath?: string;
}

export class KubeClient {
  private readonly url: URL;

  constructor(private readonly options: KubeClientOptions) {
    this.url = new URL(options.server);
    // Through a socket, the server's address lives in a network namespace the test created.
    if (options.socketPath === undefined && this.url.hostname !== "127.0.0.1") {
      throw new Error(`refusing to talk to ${this.url.hostname}: the e2e only uses 127.0.0.1 or a test node's own addresses`);
    }
  }

  request<T = any>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const request = https.request(
        {
          // With a socket path, host and port only name the server (Host header, TLS identity).
          host: this.url.hostname,
          port: this.url.port,
          socketPath: this.options.socketPath,
          method,
          path,
          ca: this.options.tls.ca,
          cert: this.options.tls.cert,
          key: this.options.tls.key,
          headers: { accept: "application/json", ...(payload === undefined ? {} : { "content-type": "application/json" }) },
          timeout: 30_000,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            // Health endpoints (/readyz, /livez) answer in plain text.
            const json = (response.headers["content-type"] ?? "").includes("json");
            resolve({ status: response.statusCode ?? 0, body: (text === "" ? undefined : json ? JSON.parse(text) : text) as T });
          });
        },
      );
      request.on("timeout", () => request.destroy(new Error(`${method} ${path} timed out`)));
      request.on("error", reject);
      request.end(payload);
    });
  }

  /** GETs a path that must exist. */
  async get<T = any>(path: string): Promise<T> {
    const response = await this.request<T>("GET", path);
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body;
  }

  /** Items of a list path, or an empty list when the resource type is not served (yet). */
  async list<T = any>(path: string): Promise<T[]> {
    const response = await this.request<{ items: T[] }>("GET", path);
    if (response.status === 404) return [];
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.items;
  }
}

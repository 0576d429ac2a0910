/**
 * A minimal Kubernetes API client for the e2e assertions: JSON over HTTPS with the control plane's
 * admin certificate, to 127.0.0.1 only. Small enough to read at a glance, and it keeps the test
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
}

export class KubeClient {
  private readonly url: URL;

  constructor(private readonly options: KubeClientOptions) {
    this.url = new URL(options.server);
    if (this.url.hostname !== "127.0.0.1") throw new Error(`refusing to talk to ${this.url.hostname}: the e2e only uses 127.0.0.1`);
  }

  request<T = any>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const request = https.request(
        {
          host: this.url.hostname,
          port: this.url.port,
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
            resolve({ status: response.statusCode ?? 0, body: (text === "" ? undefined : JSON.parse(text)) as T });
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

  /** Polls until `check` returns a value, or fails after `timeoutMs`. */
  async waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/**
 * A minimal Kubernetes API client for the e2e assertions: JSON over HTTPS with the cluster's admin
 * certificate, to 127.0.0.1 only (directly, or through a Unix socket forwarded into the network
 * namespace a test node listens in). Small enough to read at a glance, and it keeps the test
 * independent of any client library's notion of the cluster.
 */
import * as https from "node:https";
import { parse } from "yaml";

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly body: T;
}

/** What the API needs to place an object. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

export interface KubeClientOptions {
  readonly server: string;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  /** A Unix socket that leads to `server`'s 127.0.0.1 (see e2e/node/node.ts). */
  readonly socketPath?: string;
  /** Acts as this user and groups (`kubectl --as --as-group`): the credentials' user must be allowed to impersonate. */
  readonly impersonate?: { readonly user: string; readonly groups: readonly string[] };
}

export class KubeClient {
  private readonly url: URL;
  /** API discovery by group version, fetched once each it is served: the groups a test applies to stay put. */
  private readonly discovered = new Map<string, { resources: { name: string; kind: string; namespaced: boolean }[] }>();

  constructor(private readonly options: KubeClientOptions) {
    this.url = new URL(options.server);
    // Through a socket, the server's address lives in a network namespace the test created.
    if (options.socketPath === undefined && this.url.hostname !== "127.0.0.1") {
      throw new Error(`refusing to talk to ${this.url.hostname}: the e2e only uses 127.0.0.1 or a test node's own addresses`);
    }
  }

  /** The same client acting as `user` in `groups`, as `kubectl --as --as-group` does. */
  as(user: string, groups: readonly string[] = []): KubeClient {
    return new KubeClient({ ...this.options, impersonate: { user, groups } });
  }

  request<T = any>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<ApiResponse<T>> {
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
          headers: {
            accept: "application/json",
            ...(payload === undefined ? {} : { "content-type": contentType }),
            ...(this.options.impersonate === undefined
              ? {}
              : { "impersonate-user": this.options.impersonate.user, "impersonate-group": [...this.options.impersonate.groups] }),
          },
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

  /**
   * A server-side apply that persists nothing (`dryRun=All`) and refuses fields the schema does not
   * know (`fieldValidation=Strict`): what the API server would say to this object, admission included.
   */
  async dryRunApply(object: KubeObject): Promise<ApiResponse> {
    const query = "dryRun=All&fieldValidation=Strict&fieldManager=k0s-platform-e2e&force=true";
    const path = `${await this.collectionPath(object)}/${object.metadata.name}?${query}`;
    // JSON is YAML, which is what server-side apply reads.
    return this.request("PATCH", path, object, "application/apply-patch+yaml");
  }

  /** The REST path of an object's collection, found through discovery as kubectl finds it. */
  async collectionPath(object: KubeObject): Promise<string> {
    const group = object.apiVersion.includes("/") ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
    if (!this.discovered.has(group)) this.discovered.set(group, await this.get(group));
    const { resources } = this.discovered.get(group)!;
    const resource = resources.find((candidate) => candidate.kind === object.kind && !candidate.name.includes("/"));
    if (resource === undefined) throw new Error(`${object.apiVersion} serves no ${object.kind}`);
    if (!resource.namespaced) return `${group}/${resource.name}`;
    if (object.metadata.namespace === undefined) throw new Error(`${object.kind}/${object.metadata.name} names no namespace`);
    return `${group}/namespaces/${object.metadata.namespace}/${resource.name}`;
  }

  /** Items of a list path, or an empty list when the resource type is not served (yet). */
  async list<T = any>(path: string): Promise<T[]> {
    const response = await this.request<{ items: T[] }>("GET", path);
    if (response.status === 404) return [];
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.items;
  }
}

interface Kubeconfig {
  "current-context"?: string;
  clusters: { name: string; cluster: { server: string; "certificate-authority-data": string } }[];
  users: { name: string; user: { "client-certificate-data"?: string; "client-key-data"?: string } }[];
  contexts: { name: string; context: { cluster: string; user: string } }[];
}

/** A client for one context of a kubeconfig, and the credential strings it holds. */
export interface KubeconfigClient {
  readonly client: KubeClient;
  /** The client key, base64 as stored and PEM: strings that must never appear in plaintext state. */
  readonly credentials: readonly string[];
}

/**
 * Parses a kubeconfig's `context` (default: its current context) into a client. Client-certificate
 * users only, which is what k0s and the test clusters issue; `socketPath` leads to the server's
 * address inside a test's network namespace.
 */
export function clientFromKubeconfig(kubeconfig: string, options: { context?: string; socketPath?: string } = {}): KubeconfigClient {
  const config = parse(kubeconfig) as Kubeconfig;
  const contextName = options.context ?? config["current-context"] ?? config.contexts[0]?.name;
  const entry = config.contexts.find((candidate) => candidate.name === contextName);
  if (entry === undefined) throw new Error(`the kubeconfig has no context "${contextName}"`);
  const cluster = config.clusters.find((candidate) => candidate.name === entry.context.cluster)?.cluster;
  const user = config.users.find((candidate) => candidate.name === entry.context.user)?.user;
  if (cluster === undefined || user === undefined) throw new Error(`context "${contextName}" names a missing cluster or user`);
  const keyData = user["client-key-data"];
  const certData = user["client-certificate-data"];
  if (keyData === undefined || certData === undefined) throw new Error("the e2e client supports client-certificate users only");
  const decode = (data: string) => Buffer.from(data, "base64").toString("utf8");
  const client = new KubeClient({
    server: cluster.server,
    socketPath: options.socketPath,
    tls: { ca: decode(cluster["certificate-authority-data"]), cert: decode(certData), key: decode(keyData) },
  });
  return { client, credentials: [keyData, decode(keyData).trim()] };
}

/** What a client-certificate kubeconfig holds, as PEM. */
export interface KubeconfigCredentials {
  readonly server: string;
  readonly context: string;
  readonly user: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** A kubeconfig with one cluster, user and context, the current one: what k0s writes to admin.conf. */
export function renderKubeconfig({ server, context, user, ca, cert, key }: KubeconfigCredentials): string {
  const b64 = (pem: string) => Buffer.from(pem).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${context}`,
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(ca)}`,
    "users:",
    `- name: ${user}`,
    "  user:",
    `    client-certificate-data: ${b64(cert)}`,
    `    client-key-data: ${b64(key)}`,
    "contexts:",
    `- name: ${context}`,
    "  context:",
    `    cluster: ${context}`,
    `    user: ${user}`,
    `current-context: ${context}`,
    "",
  ].join("\n");
}

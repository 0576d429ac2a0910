/**
 * The Secret a Flux GitRepository authenticates with (Flux's keys: identity, identity.pub and
 * known_hosts over SSH; username, password and ca.crt over HTTPS); none for a public HTTPS one.
 * Created under the component that calls it, which passes itself as `parent`. And the
 * GitRepository's spec that names it.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { FluxAuth } from "./fluxConfig";
import { generateSshKeyPair } from "./sshKeys";

export interface GitCredentials {
  readonly secret: k8s.core.v1.Secret;
  /** The public half of the generated deploy key (ssh:// only), to add to the repository read-only. */
  readonly deployKey?: pulumi.Output<string>;
}

/**
 * The deploy key follows SopsAgeKey: a fresh key is proposed on every run, the Secret ignores it
 * after creation, and the public half is read back from what is stored, so the key pasted into the
 * Git host stays valid. known_hosts is not ignored: a changed pin reaches the cluster.
 *
 * The SSH Secret is a resource of its own (`<name>-deploy-key`, object `<object name>-deploy-key`),
 * apart from the HTTPS one (`<name>-credentials`): switching a repository from https:// to ssh://
 * then creates it with a key. As the same resource, even replaced for its new object name, the
 * ignored key path would have kept the old state's (absent) key absent (seen on the node).
 */
export function gitCredentials(
  name: string,
  metadata: { name: string; namespace: pulumi.Input<string> },
  auth: FluxAuth,
  keyComment: string,
  parent: pulumi.Resource,
): GitCredentials | undefined {
  const base64 = (text: string) => Buffer.from(text).toString("base64");
  if (auth.kind === "ssh") {
    const proposed = generateSshKeyPair(keyComment);
    const secret = new k8s.core.v1.Secret(
      `${name}-deploy-key`,
      {
        metadata: { ...metadata, name: `${metadata.name}-deploy-key` },
        type: "Opaque",
        data: {
          identity: pulumi.secret(base64(proposed.privateKey)),
          "identity.pub": base64(`${proposed.publicKey} ${keyComment}\n`),
          known_hosts: base64(`${auth.knownHosts.trim()}\n`),
        },
      },
      { parent, ignoreChanges: ["data.identity", 'data["identity.pub"]'] },
    );
    const deployKey = pulumi.unsecret(secret.data.apply((data) => Buffer.from(data["identity.pub"], "base64").toString("utf8").trim()));
    return { secret, deployKey };
  }
  if (auth.token === undefined && auth.caCertificate === undefined) return undefined;
  const secret = new k8s.core.v1.Secret(
    `${name}-credentials`,
    {
      metadata,
      type: "Opaque",
      data: {
        ...(auth.token === undefined ? {} : { username: base64(auth.username), password: pulumi.secret(base64(auth.token)) }),
        ...(auth.caCertificate === undefined ? {} : { "ca.crt": base64(auth.caCertificate) }),
      },
    },
    { parent },
  );
  return { secret };
}

/** A GitRepository's spec: the repository's branch, fetched every `interval`, with its credentials' Secret if any. */
export function gitRepositorySpec(
  source: { readonly url: string; readonly branch: string; readonly interval: string },
  credentials: GitCredentials | undefined,
): Record<string, unknown> {
  return {
    interval: source.interval,
    url: source.url,
    ref: { branch: source.branch },
    ...(credentials === undefined ? {} : { secretRef: { name: credentials.secret.metadata.name } }),
  };
}

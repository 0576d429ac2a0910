import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SOPS_AGE_KEY, SOPS_SECRET_NAME } from "./lib/flux";

export interface SopsAgeKeyArgs {
  /** Namespace of the Secret: Flux's own, where kustomize-controller reads it. */
  readonly namespace: pulumi.Input<string>;
  /** The Secret's name; defaults to the cluster's own key, `sops-age`. */
  readonly secretName?: string;
}

/**
 * An age X25519 identity for SOPS, living in a Secret in Flux's namespace (key `age.agekey`): the
 * cluster's own (`sops-age`, for the platform's folders) or one environment's (`sops-age-<env>`).
 *
 * The program proposes a fresh identity on every run, but the Secret ignores changes to it after
 * creation, and the identity is read back from the Secret's stored data. So the key is generated
 * exactly once per cluster (or environment) and stays stable, with no extra provider plugin: the `.sops.yaml`
 * recipients stay valid. Rotate deliberately with `pulumi up --replace <the -secret URN>`, then
 * `sops updatekeys` every encrypted file.
 */
export class SopsAgeKey extends pulumi.ComponentResource {
  /** The public recipient (`age1…`) that SOPS encrypts to; not secret. */
  public readonly recipient: pulumi.Output<string>;

  constructor(name: string, args: SopsAgeKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:SopsAgeKey", name, {}, opts);

    const proposed = pulumi.secret(pulumi.output(generateIdentity()).apply((identity) => Buffer.from(identity).toString("base64")));
    const secret = new k8s.core.v1.Secret(
      `${name}-secret`,
      {
        metadata: { name: args.secretName ?? SOPS_SECRET_NAME, namespace: args.namespace },
        type: "Opaque",
        // `data`, not `stringData`: the provider stores stringData as data, so ignoring stringData
        // would still see every new proposal as a change and replace the Secret (and the key).
        data: { [SOPS_AGE_KEY]: proposed },
      },
      { parent: this, ignoreChanges: ["data"] },
    );

    // The stored identity, not the proposal: after the first run they differ.
    const identity = pulumi.secret(secret.data.apply((data) => Buffer.from(data[SOPS_AGE_KEY], "base64").toString("utf8")));
    this.recipient = pulumi.unsecret(identity.apply(recipientOf));

    this.registerOutputs({ recipient: this.recipient });
  }
}

/**
 * A new X25519 identity. X25519 rather than age-encryption's post-quantum default, because SOPS
 * reads only X25519 identities.
 */
export async function generateIdentity(): Promise<string> {
  // age-encryption is ESM-only; dynamic import keeps this module loadable as CommonJS.
  const age = await import("age-encryption");
  return age.generateX25519Identity();
}

/** Derives the public recipient from an age identity. */
export async function recipientOf(identity: string): Promise<string> {
  const age = await import("age-encryption");
  return age.identityToRecipient(identity.trim());
}

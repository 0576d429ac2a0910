import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SOPS_AGE_KEY, SOPS_SECRET_NAME } from "./lib/flux";

/** Which age identities a key's Secret holds: the generation in use, the one before it, or an import. */
export interface AgeKeyOptions {
  /** The generation in use (1, the first key, is `age.agekey`; n is `age-<n>.agekey`). Raise it to rotate. */
  readonly generation: number;
  /** Whether the previous generation stays beside it, so files not yet re-encrypted still decrypt. */
  readonly keepPrevious: boolean;
  /** An existing identity (AGE-SECRET-KEY-1…) to use for the generation in use instead of a new one. */
  readonly imported?: pulumi.Input<string>;
}

export interface SopsAgeKeyArgs {
  /** Namespace of the Secret: Flux's own, where kustomize-controller reads it. */
  readonly namespace: pulumi.Input<string>;
  /** The Secret's name; defaults to the cluster's own key, `sops-age`. */
  readonly secretName?: string;
  /** Rotation and import; defaults to the first generation, generated here. */
  readonly key?: AgeKeyOptions;
}

/** The Secret entry of a generation: kustomize-controller decrypts with every `*.agekey` entry. */
export function ageKeyEntry(generation: number): string {
  return generation === 1 ? SOPS_AGE_KEY : `age-${generation}.agekey`;
}

/**
 * An age X25519 identity for SOPS, living in a Secret in Flux's namespace: the cluster's own
 * (`sops-age`, for the platform's folders) or one environment's (`sops-age-<env>`).
 *
 * The program proposes a fresh identity on every run, but what holds it ignores changes after
 * creation, and the identity is read back from what was stored. So a key is generated exactly once
 * and stays stable, with no extra provider plugin: the `.sops.yaml` recipients stay valid. Rotating
 * raises the generation: the new identity is added beside the previous one (kustomize-controller
 * decrypts with every `*.agekey` entry, so both work while files are re-encrypted with `sops
 * updatekeys`), and the recipient becomes the new one's; turning `keepPrevious` off then drops the
 * old. An imported identity is used as given, and follows its config.
 */
export class SopsAgeKey extends pulumi.ComponentResource {
  /** The public recipient (`age1…`) of the generation in use, which SOPS encrypts to; not secret. */
  public readonly recipient: pulumi.Output<string>;

  constructor(name: string, args: SopsAgeKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:SopsAgeKey", name, {}, opts);
    const { generation, keepPrevious, imported } = args.key ?? { generation: 1, keepPrevious: true };
    const secretName = args.secretName ?? SOPS_SECRET_NAME;
    const held = keepPrevious && generation > 1 ? [generation - 1, generation] : [generation];
    const base64 = (identity: pulumi.Input<string>) =>
      pulumi.secret(pulumi.output(identity).apply((text) => Buffer.from(text).toString("base64")));
    const decode = (data: pulumi.Output<Record<string, string>>, entry: string) =>
      pulumi.secret(
        data.apply((stored) => {
          // Only a lowered generation gets here: its entry was dropped, and a kept entry is never written again.
          if (stored[entry] === undefined) {
            throw new Error(`${secretName} holds no ${entry}: a retired age key cannot come back; raise ageKeyGeneration instead`);
          }
          return Buffer.from(stored[entry], "base64").toString("utf8");
        }),
      );
    const isImported = (entry: number) => entry === generation && imported !== undefined;

    // A later generation is generated into a Secret of its own (`<name>.generation-<n>`), created
    // with its proposal and ignoring every later one: the engine never writes an entry it is told to
    // ignore into an existing Secret, so a new entry of the decryption Secret cannot be kept that way.
    const later = new Map(
      held
        .filter((entry) => entry > 1 && !isImported(entry))
        .map((entry) => {
          const keeper = new k8s.core.v1.Secret(
            `${name}-generation-${entry}`,
            {
              metadata: { name: `${secretName}.generation-${entry}`, namespace: args.namespace },
              type: "Opaque",
              data: { [SOPS_AGE_KEY]: base64(generateIdentity()) },
            },
            { parent: this, ignoreChanges: ["data"] },
          );
          return [entry, decode(keeper.data, SOPS_AGE_KEY)] as const;
        }),
    );
    // The first generation lives in the decryption Secret itself, as it always has: proposed on
    // every run, kept once created.
    const keepsFirst = held.includes(1) && !isImported(1);
    const identityOf = (entry: number): pulumi.Input<string> =>
      isImported(entry) ? imported! : entry === 1 ? generateIdentity() : later.get(entry)!;
    const secret = new k8s.core.v1.Secret(
      `${name}-secret`,
      {
        metadata: { name: secretName, namespace: args.namespace },
        type: "Opaque",
        // `data`, not `stringData`: the provider stores stringData as data, so ignoring stringData
        // would still see every new proposal as a change and replace the Secret (and the key).
        data: Object.fromEntries(held.map((entry) => [ageKeyEntry(entry), base64(identityOf(entry))])),
      },
      { parent: this, ignoreChanges: keepsFirst ? [`data["${SOPS_AGE_KEY}"]`] : [] },
    );

    // The stored identity, not the proposal: after the first run they differ.
    const identity = decode(secret.data, ageKeyEntry(generation));
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

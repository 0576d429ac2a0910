import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";

/** Where the key generator lives: the project root, whatever directory `pulumi` was started from. */
const PROJECT_ROOT = path.resolve(__dirname, "..");

/** No settings: the key is X25519, as SOPS requires. */
export type SopsAgeKeyArgs = Record<string, never>;

/**
 * One age X25519 identity per cluster, generated once by a local command and kept in the stack state
 * as a secret. Later runs replay the stored key instead of generating a new one, so the recipient
 * that `.sops.yaml` encrypts to stays valid. Rotate deliberately with
 * `pulumi up --replace <the -identity Command's URN>`, then `sops updatekeys` every encrypted file.
 */
export class SopsAgeKey extends pulumi.ComponentResource {
  /** The private identity (`AGE-SECRET-KEY-1…`); secret. */
  public readonly identity: pulumi.Output<string>;
  /** The public recipient (`age1…`) that SOPS encrypts to; not secret. */
  public readonly recipient: pulumi.Output<string>;

  constructor(name: string, _args: SopsAgeKeyArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:SopsAgeKey", name, {}, opts);

    const generator = new command.local.Command(
      `${name}-identity`,
      {
        create: "node scripts/age-keygen.mjs",
        // Any input change (a new checkout path, say) runs `update`, which re-emits the stored key.
        update: 'printf "%s" "$PULUMI_COMMAND_STDOUT"',
        dir: PROJECT_ROOT,
        logging: "none",
      },
      { parent: this, additionalSecretOutputs: ["stdout"] },
    );

    this.identity = pulumi.secret(generator.stdout);
    this.recipient = pulumi.unsecret(generator.stdout.apply(recipientOf));

    this.registerOutputs({ recipient: this.recipient });
  }
}

/** Derives the public recipient from an age identity. */
export async function recipientOf(identity: string): Promise<string> {
  // age-encryption is ESM-only; dynamic import keeps this module loadable as CommonJS.
  const age = await import("age-encryption");
  return age.identityToRecipient(identity.trim());
}

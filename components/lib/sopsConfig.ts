/**
 * Renders `.sops.yaml` for the GitOps repository. Pure: creates no resources.
 */
import { stringify } from "yaml";

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/**
 * Creation rules that encrypt every Kubernetes Secret's data in the repository to each recipient:
 * both clusters (so one file promotes from local staging to remote unchanged) plus any operator key
 * (so people can still edit what they encrypted). Only `data`/`stringData` are encrypted, keeping
 * names and kinds reviewable in pull requests.
 */
export function renderSopsConfig(recipients: readonly string[]): string {
  const unique = [...new Set(recipients)];
  if (unique.length === 0) throw new Error("no age recipients: bootstrap a cluster first (pulumi up) or pass --recipient");
  for (const recipient of unique) {
    if (!AGE_RECIPIENT.test(recipient)) throw new Error(`"${recipient}" is not an age X25519 recipient (age1…)`);
  }
  return stringify({
    creation_rules: [{ path_regex: "\\.ya?ml$", encrypted_regex: "^(data|stringData)$", age: unique.join(",") }],
  });
}

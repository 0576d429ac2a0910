/**
 * Renders `.sops.yaml` for the GitOps repository. Pure: creates no resources.
 */
import { stringify } from "yaml";

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** Who may decrypt what, as the stacks export it and the operators give it. */
export interface SopsRecipients {
  /** Each cluster's own key (`ageRecipient`): the platform's folders, infrastructure/ and clusters/. */
  readonly clusters: readonly string[];
  /** Each environment's keys (`ageRecipients`), one per cluster that runs the environment. */
  readonly environments: Readonly<Record<string, readonly string[]>>;
  /** People who edit secrets: every rule but the restricted environments'. */
  readonly operators: readonly string[];
  /** Break-glass keys, kept offline: every rule, the restricted environments' included. */
  readonly breakGlass: readonly string[];
  /** Environments whose secrets no operator key may read (RESTRICTED_ENVIRONMENTS unless given). */
  readonly restricted?: readonly string[];
}

/**
 * Environments whose secrets no workstation or everyday operator key may read, unless the caller
 * names others: a stolen laptop must not decrypt them. Anyone can still encrypt a new file for them
 * (that needs only public keys).
 */
export const RESTRICTED_ENVIRONMENTS: readonly string[] = ["production"];

/**
 * Creation rules by path, so a file is encrypted only to the keys of the place it lives: an
 * environment's secrets/ folder to that environment's keys on every cluster that runs it (staging's
 * on both staging clusters, so one file promotes unchanged), the platform's folders to the clusters'
 * own keys. A file anywhere else matches no rule, and sops refuses it. Only `data`/`stringData` are
 * encrypted, keeping names and kinds reviewable in pull requests.
 */
export function renderSopsConfig(recipients: SopsRecipients): string {
  const all = [...recipients.clusters, ...Object.values(recipients.environments).flat(), ...recipients.operators, ...recipients.breakGlass];
  for (const recipient of new Set(all)) {
    if (!AGE_RECIPIENT.test(recipient)) throw new Error(`"${recipient}" is not an age X25519 recipient (age1…)`);
  }
  /** A rule no cluster can decrypt would make every file under it fail there: refuse to write one. */
  const rule = (pathRegex: string, clusterKeys: readonly string[], people: readonly string[], what: string) => {
    if (clusterKeys.length === 0) throw new Error(`no cluster's age recipient for ${what}: bring its stack up first (pulumi up)`);
    return { path_regex: pathRegex, encrypted_regex: "^(data|stringData)$", age: [...new Set([...clusterKeys, ...people])].join(",") };
  };
  const environments = Object.entries(recipients.environments).map(([environment, keys]) =>
    rule(
      `(^|/)apps/overlays/${environment}/secrets/[^/]+\\.ya?ml$`,
      keys,
      [...((recipients.restricted ?? RESTRICTED_ENVIRONMENTS).includes(environment) ? [] : recipients.operators), ...recipients.breakGlass],
      `the ${environment} environment`,
    ),
  );
  const platform = rule(
    "(^|/)(infrastructure|clusters)/.+\\.ya?ml$",
    recipients.clusters,
    [...recipients.operators, ...recipients.breakGlass],
    "the platform's folders",
  );
  return stringify({ creation_rules: [...environments, platform] });
}

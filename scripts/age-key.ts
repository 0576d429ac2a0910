/**
 * Exports a stack's age identities from its state, once, to an operator's safe place: the copy that
 * survives losing both the cluster and the stack's backend (a password manager, an offline disk).
 *
 *   npm run age-key -- export --stack remote --out-dir <safe folder> [--owner cluster] [--owner production]
 *   npm run age-key -- export --stack remote --owner production          (to stdout, with a warning on a terminal)
 *
 * Each owner (`cluster`, or an environment) gets `<stack>-<owner>.agekey`, written 0600 and never
 * over an existing file, in age-keygen's format: it imports as it is, with
 * `pulumi config set --secret --path 'ageIdentities.<owner>' --stack <stack> < <file>`.
 * Only the generation in use is exported: the one whose recipient the stack exports.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { recipientOf } from "../components/sopsAgeKey";
import { revealed } from "./lib/stateSecrets";

interface StateResource {
  type: string;
  outputs?: Record<string, unknown>;
}

function pulumi(...args: string[]): string {
  const result = spawnSync("pulumi", args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (result.status === 0) return result.stdout;
  const why = result.error !== undefined ? "the pulumi CLI is not installed" : result.stderr.trim().split("\n").pop();
  throw new Error(`pulumi ${args.join(" ")} failed: ${why}`);
}

/** Every age identity a stack's state holds: the entries of its Kubernetes Secrets that kustomize-controller reads (`*.agekey`). */
function identitiesInState(resources: readonly StateResource[]): string[] {
  return resources
    .filter((resource) => resource.type === "kubernetes:core/v1:Secret")
    .map((resource) => revealed(resource.outputs) as { data?: Record<string, unknown> } | undefined)
    .flatMap((secret) => Object.entries(secret?.data ?? {}))
    .filter((entry): entry is [string, string] => entry[0].endsWith(".agekey") && typeof entry[1] === "string")
    .map(([, value]) => Buffer.from(value, "base64").toString("utf8").trim())
    .filter((identity) => identity.startsWith("AGE-SECRET-KEY-1"));
}

/** The identity file for one owner, as age-keygen writes one: comments, then the key. */
function identityFile(stack: string, owner: string, recipient: string, identity: string): string {
  return `# k0s-platform stack ${stack}, ${owner}: exported from the stack's state\n# public key: ${recipient}\n${identity}\n`;
}

async function exportIdentities(stack: string, owners: readonly string[] | undefined, outDir: string | undefined): Promise<void> {
  const outputs = JSON.parse(pulumi("stack", "output", "--json", "--stack", stack)) as {
    ageRecipient: string;
    ageRecipients: Record<string, string>;
  };
  const recipients: Record<string, string> = { cluster: outputs.ageRecipient, ...outputs.ageRecipients };
  const deployment = JSON.parse(pulumi("stack", "export", "--show-secrets", "--stack", stack)) as {
    deployment: { resources?: StateResource[] };
  };
  const byRecipient = new Map<string, string>();
  for (const identity of identitiesInState(deployment.deployment.resources ?? [])) {
    byRecipient.set(await recipientOf(identity), identity);
  }
  // By default every key the stack holds; a stack on another's cluster holds only its environments'.
  const chosen = owners ?? Object.keys(recipients).filter((owner) => byRecipient.has(recipients[owner]));
  const unknown = chosen.filter((owner) => recipients[owner] === undefined);
  if (unknown.length > 0) {
    throw new Error(`stack ${stack} has no age key for ${unknown.join(", ")}; it has: ${Object.keys(recipients).join(", ")}`);
  }
  const files = chosen.map((owner) => {
    const identity = byRecipient.get(recipients[owner]);
    if (identity === undefined) {
      throw new Error(
        `stack ${stack}'s state holds no identity for ${owner}'s recipient ${recipients[owner]} (a stack that shares another's cluster holds only its environments' keys)`,
      );
    }
    return { owner, text: identityFile(stack, owner, recipients[owner], identity) };
  });
  if (outDir === undefined) {
    if (process.stdout.isTTY) {
      process.stderr.write(
        "warning: printing private age keys to this terminal; its scrollback, a screen recording or a shared session keep them. Use --out-dir <safe folder> instead.\n",
      );
    }
    process.stdout.write(files.map(({ text }) => text).join(""));
    return;
  }
  fs.mkdirSync(outDir, { recursive: true, mode: 0o700 });
  for (const { owner, text } of files) {
    const file = path.join(outDir, `${stack}-${owner}.agekey`);
    // "wx": never over an existing file, and created 0600 before a byte is written.
    fs.writeFileSync(file, text, { flag: "wx", mode: 0o600 });
    console.log(`${file}: ${owner}'s identity (public key ${recipients[owner]})`);
  }
}

const USAGE = `usage: npm run age-key -- export --stack <stack> [--out-dir <safe folder>] [--owner cluster|<environment>]...

Exports the stack's age identities (the generation in use) from its state: into --out-dir, one
<stack>-<owner>.agekey file each (0600, never over an existing file), or to stdout without it.
  --stack <stack>      the stack whose keys to export (required)
  --out-dir <folder>   where to write the files; a safe place (password manager, offline disk)
  --owner <owner>      cluster, or an environment; repeat for several (default: every key the stack holds)
  -h, --help           print this help`;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        stack: { type: "string" },
        owner: { type: "string", multiple: true },
        "out-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    // Node's message goes on about positional arguments after "--", which these scripts take none of.
    throw new Error(`${(error as Error).message.split(". ")[0]} (--help lists the options)`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals[0] !== "export" || values.stack === undefined) throw new Error(USAGE);
  await exportIdentities(values.stack, values.owner, values["out-dir"]);
}

main().catch((error: Error) => {
  console.error(`age-key: ${error.message}`);
  process.exit(1);
});

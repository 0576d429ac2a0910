/**
 * Writes `.sops.yaml` for the GitOps repository: rules by path, each environment's secrets/ folder
 * encrypted to that environment's keys as the stacks export them (`ageRecipients`), the platform's
 * folders to the clusters' own keys (`ageRecipient`), plus operator keys (--recipient: every
 * environment but production) and break-glass keys (--break-glass: every environment).
 *
 *   npm run sops-config -- --out ../gitops/.sops.yaml [--stack dev] [--stack local-staging] [--stack remote]
 *                          [--recipient age1…] [--break-glass age1…] [--restricted production]
 *
 * With no --stack, the dev, local-staging and remote stacks are asked. --restricted names the
 * environments no operator key may read (production unless given). It prints every rule's folder
 * and each recipient it got, with where that key came from.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { renderSopsConfig, RESTRICTED_ENVIRONMENTS } from "../components/lib/sopsConfig";

const DEFAULT_STACKS = ["dev", "local-staging", "remote"];

function stackOutput<T>(stack: string, output: string): T {
  const result = spawnSync("pulumi", ["stack", "output", output, "--json", "--stack", stack], { encoding: "utf8" });
  if (result.status === 0) return JSON.parse(result.stdout) as T;
  const why =
    result.error !== undefined ? "the pulumi CLI is not installed" : (result.stderr.trim().split("\n").pop() ?? `exit ${result.status}`);
  throw new Error(
    `cannot read the age recipients of stack "${stack}": ${why}.\n` +
      `Bring the stack up first (pulumi up --stack ${stack}), or leave it out with --stack for each stack that is up.`,
  );
}

const USAGE = `usage: npm run sops-config -- [--out <file>] [--stack <stack>]... [--recipient age1…]... [--break-glass age1…]... [--restricted <environment>]...

Writes .sops.yaml for the GitOps repository from the stacks' age recipients (pulumi stack output).
  --out <file>            where to write it (default .sops.yaml)
  --stack <stack>         a stack to read; repeat for several (default: ${DEFAULT_STACKS.join(", ")})
  --recipient age1…       an operator key: every environment but the restricted ones
  --break-glass age1…     a break-glass key: every environment
  --restricted <env>      an environment no operator key may read (default: ${RESTRICTED_ENVIRONMENTS.join(", ")})
  -h, --help              print this help`;

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        out: { type: "string", default: ".sops.yaml" },
        stack: { type: "string", multiple: true },
        recipient: { type: "string", multiple: true, default: [] },
        "break-glass": { type: "string", multiple: true, default: [] },
        restricted: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    // Node's message goes on about positional arguments after "--", which these scripts take none of.
    throw new Error(`${(error as Error).message.split(". ")[0]} (--help lists the options)`);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const stacks = values.stack ?? DEFAULT_STACKS;
  const restricted = values.restricted ?? RESTRICTED_ENVIRONMENTS;
  /** Every recipient, with where it came from, so the summary can say which key went where. */
  const origin = new Map<string, string[]>();
  const from = (key: string, where: string) => origin.set(key, [...new Set([...(origin.get(key) ?? []), where])]);
  const clusters: string[] = [];
  const environments: Record<string, string[]> = {};
  for (const stack of stacks) {
    const cluster = stackOutput<string>(stack, "ageRecipient");
    clusters.push(cluster);
    from(cluster, `${stack}'s cluster`);
    for (const [environment, recipient] of Object.entries(stackOutput<Record<string, string>>(stack, "ageRecipients"))) {
      (environments[environment] ??= []).push(recipient);
      from(recipient, `${stack}'s ${environment}`);
    }
  }
  for (const key of values.recipient) from(key, "operator");
  for (const key of values["break-glass"]) from(key, "break-glass");
  const rules = renderSopsConfig({ clusters, environments, operators: values.recipient, breakGlass: values["break-glass"], restricted });
  fs.writeFileSync(values.out, rules);
  console.log(`wrote ${values.out}:`);
  for (const rule of (parse(rules) as { creation_rules: { path_regex: string; age: string }[] }).creation_rules) {
    console.log(`  ${rule.path_regex.replace("(^|/)", "").replace("\\.ya?ml$", ".yaml")}`);
    for (const key of rule.age.split(",")) console.log(`    ${key}  ${(origin.get(key) ?? []).join(", ")}`);
  }
}

try {
  main();
} catch (error) {
  console.error(`sops-config: ${(error as Error).message}`);
  process.exit(1);
}

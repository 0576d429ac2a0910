/**
 * Writes `.sops.yaml` for the GitOps repository: rules by path, each environment's secrets/ folder
 * encrypted to that environment's keys as the stacks export them (`ageRecipients`), the platform's
 * folders to the clusters' own keys (`ageRecipient`), plus operator keys (--recipient: every
 * environment but production) and break-glass keys (--break-glass: every environment).
 *
 *   npm run sops-config -- --out ../gitops/.sops.yaml [--stack dev] [--stack local-staging] [--stack remote]
 *                          [--recipient age1…] [--break-glass age1…]
 *
 * With no --stack, the dev, local-staging and remote stacks are asked.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { parseArgs } from "node:util";
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

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: ".sops.yaml" },
      stack: { type: "string", multiple: true },
      recipient: { type: "string", multiple: true, default: [] },
      "break-glass": { type: "string", multiple: true, default: [] },
    },
  });
  const stacks = values.stack ?? DEFAULT_STACKS;
  const clusters: string[] = [];
  const environments: Record<string, string[]> = {};
  for (const stack of stacks) {
    clusters.push(stackOutput<string>(stack, "ageRecipient"));
    for (const [environment, recipient] of Object.entries(stackOutput<Record<string, string>>(stack, "ageRecipients"))) {
      (environments[environment] ??= []).push(recipient);
    }
  }
  fs.writeFileSync(
    values.out,
    renderSopsConfig({ clusters, environments, operators: values.recipient, breakGlass: values["break-glass"] }),
  );
  console.log(`wrote ${values.out}:`);
  for (const [environment, keys] of Object.entries(environments)) {
    const people = RESTRICTED_ENVIRONMENTS.includes(environment)
      ? values["break-glass"].length
      : values.recipient.length + values["break-glass"].length;
    console.log(`  apps/overlays/${environment}/secrets: ${keys.length} cluster key(s), ${people} operator key(s)`);
  }
  console.log(
    `  infrastructure/, clusters/: ${new Set(clusters).size} cluster key(s), ${values.recipient.length + values["break-glass"].length} operator key(s)`,
  );
}

try {
  main();
} catch (error) {
  console.error(`sops-config: ${(error as Error).message}`);
  process.exit(1);
}

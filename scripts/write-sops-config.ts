/**
 * Writes `.sops.yaml` for the GitOps repository, encrypting to every cluster's age recipient as the
 * stacks export them, and to operator keys given with --recipient.
 *
 *   npm run sops-config -- --out ../gitops/.sops.yaml [--stack dev] [--stack remote] [--recipient age1…]
 *
 * With no --stack, the dev and remote stacks are asked, unless recipients are given: then those
 * alone are written, and neither the Pulumi CLI nor a stack is needed.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { renderSopsConfig } from "../components/lib/sopsConfig";

const DEFAULT_STACKS = ["dev", "remote"];

function stackRecipient(stack: string): string {
  const result = spawnSync("pulumi", ["stack", "output", "ageRecipient", "--stack", stack], { encoding: "utf8" });
  if (result.status === 0) return result.stdout.trim();
  const why =
    result.error !== undefined ? "the pulumi CLI is not installed" : (result.stderr.trim().split("\n").pop() ?? `exit ${result.status}`);
  throw new Error(
    `cannot read the age recipient of stack "${stack}": ${why}.\n` +
      `Bring the stack up first (pulumi up --stack ${stack}), or pass its recipient with --recipient age1… and leave out --stack.`,
  );
}

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: ".sops.yaml" },
      stack: { type: "string", multiple: true },
      recipient: { type: "string", multiple: true, default: [] },
    },
  });
  const stacks = values.stack ?? (values.recipient.length > 0 ? [] : DEFAULT_STACKS);
  const clusterRecipients = stacks.map(stackRecipient);
  fs.writeFileSync(values.out, renderSopsConfig([...clusterRecipients, ...values.recipient]));
  console.log(`wrote ${values.out} for ${clusterRecipients.length} cluster(s) and ${values.recipient.length} key(s) given by hand`);
}

try {
  main();
} catch (error) {
  console.error(`sops-config: ${(error as Error).message}`);
  process.exit(1);
}

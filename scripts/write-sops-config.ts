/**
 * Writes `.sops.yaml` for the GitOps repository, encrypting to every cluster's age recipient as the
 * stacks export them (and to operator keys given with --recipient).
 *
 *   npm run sops-config -- --out ../gitops/.sops.yaml [--stack dev] [--stack remote] [--recipient age1…]
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { renderSopsConfig } from "../components/lib/sopsConfig";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: ".sops.yaml" },
    stack: { type: "string", multiple: true, default: ["dev", "remote"] },
    recipient: { type: "string", multiple: true, default: [] },
  },
});

const clusterRecipients = values.stack.map((stack) =>
  execFileSync("pulumi", ["stack", "output", "ageRecipient", "--stack", stack], { encoding: "utf8" }).trim(),
);
fs.writeFileSync(values.out, renderSopsConfig([...clusterRecipients, ...values.recipient]));
console.log(`wrote ${values.out} for ${clusterRecipients.length} cluster(s) and ${values.recipient.length} operator key(s)`);

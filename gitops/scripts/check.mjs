#!/usr/bin/env node
// The repository checks itself (npm run check; the check workflow runs it on every pull request):
//
//   1. renders what Flux applies, per cluster: clusters/<cluster>/ as the root Kustomization the
//      Pulumi program creates, then every Flux Kustomization it names (kustomize build of spec.path,
//      the Kustomization's own patches, then postBuild substitution with sample values);
//   2. validates every rendered object strictly (kubeconform -strict: unknown fields refused)
//      against Kubernetes' schema and the CRDs of what the repository pins (Flux, cert-manager, Traefik);
//   3. refuses a Secret that is not SOPS-encrypted, a SOPS file that .sops.yaml has no rule for, and
//      an Ingress or Certificate naming an issuer its cluster does not define;
//   4. with --base <ref>, prints per cluster and Kustomization what the change does to the rendered objects.
//
// Options: --base <ref> (a commit, e.g. origin/main; no diff without it), --schemas <file|dir>
// (repeatable: Kubernetes' swagger.json and CRD files, offline; without it the pinned releases are
// downloaded into --cache, by default ~/.cache/gitops-check), --repo <dir> (.), --kustomize <bin>
// (kustomize, or kubectl for `kubectl kustomize`), --kubeconform <bin>, --var <name>=<value>
// (repeatable: a substitution value instead of the sample), --kubernetes-version, --flux-version.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { importInstalled } from "./installed.mjs";

const HELP = readFileSync(new URL(import.meta.url), "utf8")
  .split("\n")
  .slice(1)
  .filter((line) => line.startsWith("//"))
  .map((line) => line.replace(/^\/\/ ?/, ""))
  .join("\n");

const OPTIONS = {
  base: { type: "string" },
  schemas: { type: "string", multiple: true },
  cache: { type: "string" },
  repo: { type: "string", default: "." },
  kustomize: { type: "string" },
  kubeconform: { type: "string" },
  var: { type: "string", multiple: true },
  "kubernetes-version": { type: "string" },
  "flux-version": { type: "string" },
  help: { type: "boolean", short: "h" },
};

async function main() {
  let values;
  try {
    ({ values } = parseArgs({ options: OPTIONS }));
  } catch (error) {
    throw new Error(`${error.message.split(". ")[0]} (--help lists the options)`);
  }
  if (values.help) return console.log(HELP);
  const { run } = await importInstalled(new URL("./check/run.mjs", import.meta.url));
  await run(values);
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 2;
});

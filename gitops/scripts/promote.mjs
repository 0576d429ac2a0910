#!/usr/bin/env node
// The soak guard: production only gets what soaked in remote staging (`--help` says how to use it).
//
// This entry imports nothing but Node's own modules, and loads the guard (promote-run.mjs) only
// once the options are read (installed.mjs says why).
import { parseArgs } from "node:util";
import { importInstalled } from "./installed.mjs";

/** Every option, with what `--help` says of it. */
const OPTIONS = [
  ["repo", { type: "string", default: "." }, "<dir>", "the GitOps folder: a repository's root, or a folder inside a larger one (.)"],
  [
    "branch",
    { type: "string", default: "main" },
    "<name>",
    "the branch Flux syncs, where the soak is measured and promotions start (main)",
  ],
  ["from", { type: "string", default: "staging" }, "<env>", "where releases soak: apps/overlays/<env>, Flux's apps-<env> (staging)"],
  ["to", { type: "string", default: "production" }, "<env>", "where soaked releases go (production)"],
  ["soak-days", { type: "string", default: "7" }, "<n>", "how long a release must have been in <from> on <branch> (7)"],
  [
    "override",
    { type: "string" },
    '"<why>"',
    "promote anyway; the commit records why and what was refused (a Soak-Override: trailer); " +
      "with --check, accept a refused change only with --approved-by naming a code owner",
  ],
  ["kubeconfig", { type: "string" }, "<file>", "also require Flux's apps-<from> in that cluster to have applied the soaked revision"],
  ["context", { type: "string" }, "<name>", "the kubeconfig's context (its current one)"],
  [
    "metrics",
    { type: "string" },
    "<url>",
    "also require that the app's containers in <from> never restarted during the soak, from VictoriaMetrics " +
      "(kubectl port-forward -n monitoring svc/victoria-metrics 8428: http://127.0.0.1:8428)",
  ],
  ["timeout", { type: "string", default: "20" }, "<s>", "give up on each cluster or metrics request after <s> seconds (20)"],
  [
    "check",
    { type: "boolean", default: false },
    "",
    "the pull-request check: refuse any <to> release the checked-out tree sets that has not soaked; " +
      "a change that leaves apps/base/ and apps/overlays/<to>/ alone passes at once",
  ],
  ["base", { type: "string" }, "<ref>", "(--check) what the pull request is compared with (<branch>)"],
  ["approved-by", { type: "string" }, "<logins>", "(--check) who approved the pull request's latest commit, comma-separated"],
  [
    "codeowners",
    { type: "string" },
    "<file>",
    "(--check) where production's code owners are read (.github/CODEOWNERS at the repository's root)",
  ],
  ["help", { type: "boolean", short: "h", default: false }, "", "print this and exit"],
];

const USAGE = `usage: npm run promote -- <app> [options]      (or: node scripts/promote.mjs <app> [options])
       npm run promote -- --check [options]

Promotes <from>'s release of <app> (its images: entry in apps/overlays/<from>/kustomization.yaml on
<branch>: image name, tag and digest) to <to>, if it has been there for the soak period: the change is
committed on a new branch, promote/<app>-<tag>, started at <branch>, for a pull request to carry; your
checkout is left as it was. --check is that pull request's check (.github/workflows/soak-guard.yml).

Options:
${OPTIONS.map(([name, { short }, arg, help]) => `  ${short ? `-${short}, ` : ""}--${name}${arg ? ` ${arg}` : ""}\n      ${help}`).join("\n")}

Exit status: 0 promoted (or, with --check, nothing refused), 1 refused, 2 could not run (it says why).`;

async function main() {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: Object.fromEntries(OPTIONS.map(([name, config]) => [name, config])) });
  } catch (error) {
    // Node's own advice on '--' never helps here: no app name starts with a dash.
    throw new Error(`${error.message.split(". ")[0]} (--help lists the options)`);
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  const { run } = await importInstalled(new URL("./promote-run.mjs", import.meta.url));
  return run(parsed.values, parsed.positionals);
}

// Always a command, never imported: guessing whether it is the entry point (import.meta.url against
// argv[1]) misses links and paths with spaces, and would then pass --check without checking.
main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`promote: ${error.message}`);
    process.exit(2);
  },
);

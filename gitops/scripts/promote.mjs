#!/usr/bin/env node
// The soak guard: production only gets what soaked in remote staging.
//
//   node scripts/promote.mjs <app>          promote staging's release of <app> to production, as a
//                                           commit, if it has been in the staging overlay on main
//                                           for at least the soak period
//   node scripts/promote.mjs --check        refuse any production release that has not soaked
//                                           (the pull-request workflow runs this)
//
// Options: --soak-days <n> (7), --branch <main>, --repo <dir> (.), --override "<why>" (promote
// anyway; the commit records why), and, given access to the remote cluster, --kubeconfig <file>
// [--context <name>] (Flux must report the soaked revision applied in staging) and --metrics <url>
// (VictoriaMetrics, for example through `kubectl port-forward -n monitoring svc/victoria-metrics
// 8428`: the app's containers in staging must not have restarted during the soak).
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseDocument } from "yaml";

const DAY_MS = 24 * 60 * 60 * 1000;
const overlay = (env) => `apps/overlays/${env}/kustomization.yaml`;

/** The image tags an overlay pins, by app (the image name's last path element). */
function pinnedTags(kustomizationText) {
  const images = parseDocument(kustomizationText).toJS()?.images ?? [];
  return Object.fromEntries(
    images.filter((image) => image.newTag !== undefined).map((image) => [image.name.split("/").pop(), String(image.newTag)]),
  );
}

function git(repo, ...args) {
  return execFileSync("git", ["-C", repo, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

function fileAt(repo, commit, file) {
  try {
    return git(repo, "show", `${commit}:${file}`);
  } catch {
    return undefined;
  }
}

/**
 * Since when `tag` has been staging's release of `app` on `branch`, without interruption: the
 * first commit of the latest run of commits whose staging overlay pins it (first parents only,
 * so what counts is when it reached the branch). Undefined if staging does not pin it now.
 */
function soakStart(repo, branch, app, tag) {
  const history = git(repo, "log", "--first-parent", "--format=%H %cI", branch, "--", overlay("staging"))
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [commit, date] = line.split(" ");
      return { commit, date: new Date(date) };
    });
  let start;
  for (const entry of history) {
    const text = fileAt(repo, entry.commit, overlay("staging"));
    if (text === undefined || pinnedTags(text)[app] !== tag) break;
    start = entry;
  }
  return start;
}

/** Whether `tag` of `app` may go to production now, and if not, why. */
function soakVerdict(repo, { branch, app, tag, soakDays, now = new Date() }) {
  const start = soakStart(repo, branch, app, tag);
  if (start === undefined) {
    const current = pinnedTags(fileAt(repo, branch, overlay("staging")) ?? "")[app];
    return {
      ok: false,
      reason: `${app} ${tag} is not what staging runs on ${branch} (staging pins ${current ?? "nothing"}): it never soaked`,
    };
  }
  const days = (now.getTime() - start.date.getTime()) / DAY_MS;
  if (days < soakDays) {
    return {
      ok: false,
      start,
      reason:
        `${app} ${tag} has been in staging on ${branch} for ${days.toFixed(1)} days (since ${start.date.toISOString()}, ${start.commit.slice(0, 12)}): ` +
        `${(soakDays - days).toFixed(1)} more day(s) of the ${soakDays}-day soak to go`,
    };
  }
  return { ok: true, start, reason: `${app} ${tag} soaked ${days.toFixed(1)} days in staging (since ${start.commit.slice(0, 12)})` };
}

/** Flux's view of staging: the revision apps-staging applied must contain the soak's start. */
function fluxStagingCheck(repo, start, kubectl) {
  const kustomization = JSON.parse(kubectl(["get", "kustomization", "apps-staging", "-n", "flux-system", "-o", "json"]));
  const revision = kustomization.status?.lastAppliedRevision ?? "";
  const applied = revision.split(":").pop();
  const ready = (kustomization.status?.conditions ?? []).find((condition) => condition.type === "Ready")?.status === "True";
  let contains = false;
  try {
    git(repo, "merge-base", "--is-ancestor", start.commit, applied);
    contains = true;
  } catch {
    contains = false;
  }
  if (!ready || !contains) {
    return {
      ok: false,
      reason: `Flux has not applied it in staging: apps-staging is ${ready ? "Ready" : "not Ready"} at ${revision || "no revision"}`,
    };
  }
  return { ok: true, reason: `Flux applied ${revision} in staging` };
}

/** Restarts of the app's containers in staging over the soak, from VictoriaMetrics. */
async function restartCheck(metricsUrl, app, soakDays) {
  // In minutes, so that a fraction of a day is a valid window too.
  const window = `${Math.max(1, Math.round(soakDays * 24 * 60))}m`;
  // From the kubelet's cAdvisor metrics (no kube-state-metrics needed): every run of a container
  // is a series of its own (its container ID is a label), so a pod's restarts in the window are the
  // runs of its container seen there, less one.
  const query = `count by (pod) (last_over_time(container_start_time_seconds{namespace="staging",container="${app}"}[${window}])) - 1`;
  const response = await fetch(`${metricsUrl.replace(/\/$/, "")}/api/v1/query?query=${encodeURIComponent(query)}`);
  if (!response.ok) return { ok: false, reason: `monitoring answered ${response.status} to the restart query` };
  const { data } = await response.json();
  const restarted = data.result.filter((series) => Number(series.value[1]) > 0);
  if (restarted.length > 0) {
    const pods = restarted.map((series) => `${series.metric.pod} (${Math.round(Number(series.value[1]))} restarts)`).join(", ");
    return { ok: false, reason: `${app} restarted in staging during the soak: ${pods}` };
  }
  return { ok: true, reason: `${app} never restarted in staging over the last ${soakDays} days` };
}

function setProductionTag(repo, app, tag) {
  const file = join(repo, overlay("production"));
  const document = parseDocument(readFileSync(file, "utf8"));
  const images = document.get("images");
  const entry = images?.items.find((item) => String(item.get("name")).split("/").pop() === app);
  if (entry === undefined) throw new Error(`${overlay("production")} pins no image for ${app}`);
  entry.set("newTag", tag);
  writeFileSync(file, document.toString());
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      repo: { type: "string", default: "." },
      branch: { type: "string", default: "main" },
      "soak-days": { type: "string", default: "7" },
      override: { type: "string" },
      check: { type: "boolean", default: false },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      metrics: { type: "string" },
    },
  });
  const repo = values.repo;
  const soakDays = Number(values["soak-days"]);
  if (!Number.isFinite(soakDays) || soakDays < 0) throw new Error(`--soak-days ${values["soak-days"]} is not a number of days`);
  const kubectl = (args) =>
    execFileSync("kubectl", [`--kubeconfig=${values.kubeconfig}`, ...(values.context ? [`--context=${values.context}`] : []), ...args], {
      encoding: "utf8",
    });

  // In --check mode, every app production pins in the working tree; else the one named.
  const production = pinnedTags(readFileSync(join(repo, overlay("production")), "utf8"));
  const staging = pinnedTags(readFileSync(join(repo, overlay("staging")), "utf8"));
  const onBranch = pinnedTags(fileAt(repo, values.branch, overlay("production")) ?? "");
  const candidates = values.check
    ? Object.entries(production).filter(([app, tag]) => onBranch[app] !== tag)
    : positionals.map((app) => [app, staging[app]]);
  if (!values.check && candidates.length !== 1) throw new Error("name one app to promote, for example: promote podinfo");

  const refusals = [];
  for (const [app, tag] of candidates) {
    if (tag === undefined) throw new Error(`${overlay("staging")} pins no image for ${app}`);
    const verdicts = [soakVerdict(repo, { branch: values.branch, app, tag, soakDays })];
    if (verdicts[0].ok && values.kubeconfig) verdicts.push(fluxStagingCheck(repo, verdicts[0].start, kubectl));
    if (verdicts[0].ok && values.metrics) verdicts.push(await restartCheck(values.metrics, app, soakDays));
    for (const verdict of verdicts) console.log(`${verdict.ok ? "ok" : "refused"}: ${verdict.reason}`);
    const failed = verdicts.filter((verdict) => !verdict.ok);
    refusals.push(...failed.map((verdict) => verdict.reason));
    if (!values.check && (failed.length === 0 || values.override)) {
      if (failed.length > 0) console.error(`OVERRIDE: promoting ${app} ${tag} anyway: ${values.override}`);
      setProductionTag(repo, app, tag);
      const trailer =
        failed.length > 0 ? `\n\nSoak-Override: ${values.override}\nRefused: ${failed.map((verdict) => verdict.reason).join("; ")}` : "";
      git(
        repo,
        "commit",
        "--quiet",
        "-m",
        `Promote ${app} ${tag} to production\n\n${verdicts.map((verdict) => verdict.reason).join("\n")}${trailer}`,
        "--",
        overlay("production"),
      );
      console.log(`committed: ${git(repo, "log", "-1", "--format=%h %s")}`);
      return 0;
    }
  }
  if (values.check && refusals.length > 0 && values.override) {
    console.error(`OVERRIDE: accepting the production change anyway: ${values.override}`);
    return 0;
  }
  if (refusals.length > 0) {
    console.error(`refusing to promote: ${refusals.join("; ")}`);
    return 1;
  }
  if (values.check) console.log("every production release soaked in staging");
  return 0;
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

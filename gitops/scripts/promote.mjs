#!/usr/bin/env node
// The soak guard: production only gets what soaked in remote staging.
//
//   node scripts/promote.mjs <app>          promote staging's release of <app> to production, as a
//                                           commit, if it has been in the staging overlay on main
//                                           for at least the soak period
//   node scripts/promote.mjs --check        refuse any production release that has not soaked
//                                           (the pull-request workflow runs this, from the base branch)
//
// --from <env> (staging) and --to <env> (production) name the environments, for a client whose
// stacks call them otherwise; everything below says staging and production for them.
//
// A release is the image an overlay's `images:` entry makes of the app: name, tag and digest.
// Options: --soak-days <n> (7), --branch <main>, --repo <dir> (.), --base <ref> (--check: what the
// pull request changes, by default --branch), --override "<why>" (promote anyway; the commit records
// why; in --check, only with --approved-by naming a code owner of production's overlay in
// --codeowners <file> (<repo>/.github/CODEOWNERS)), and, given access to the remote cluster,
// --kubeconfig <file> [--context <name>] (Flux must report the soaked revision applied in staging)
// and --metrics <url> (VictoriaMetrics, for example through `kubectl port-forward -n monitoring
// svc/victoria-metrics 8428`: the app's containers in staging must not have restarted during the
// soak). Whatever the guard cannot read, it refuses; every request times out after --timeout <s> (20).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseDocument } from "yaml";

const DAY_MS = 24 * 60 * 60 * 1000;

const overlayDir = (env) => `apps/overlays/${env}/`;
const overlay = (env) => `${overlayDir(env)}kustomization.yaml`;

/**
 * The release an overlay pins for each app (the image name's last path element): the image it
 * makes of it, as `name:tag@digest` (name and tag as the base has them where the entry leaves them).
 */
function pinnedReleases(kustomizationText) {
  const images = parseDocument(kustomizationText).toJS()?.images ?? [];
  return Object.fromEntries(
    images.map((image) => [
      image.name.split("/").pop(),
      `${image.newName ?? image.name}:${image.newTag ?? "(base tag)"}${image.digest === undefined ? "" : `@${image.digest}`}`,
    ]),
  );
}

/** The kustomization without its image pins: what else decides what runs. */
function withoutImages(kustomizationText) {
  const { images: _images, ...rest } = parseDocument(kustomizationText).toJS() ?? {};
  return JSON.stringify(rest);
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
 * Since when `release` has been staging's release of `app` on `branch`, without interruption: the
 * first commit of the latest run of commits whose staging overlay pins it (first parents only,
 * so what counts is when it reached the branch). Undefined if staging does not pin it now.
 */
function soakStart(repo, branch, app, release, from) {
  const history = git(repo, "log", "--first-parent", "--format=%H %cI", branch, "--", overlay(from))
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [commit, date] = line.split(" ");
      return { commit, date: new Date(date) };
    });
  let start;
  for (const entry of history) {
    const text = fileAt(repo, entry.commit, overlay(from));
    if (text === undefined || pinnedReleases(text)[app] !== release) break;
    start = entry;
  }
  return start;
}

/** Whether `release` of `app` may go to production now, and if not, why. */
function soakVerdict(repo, { branch, app, release, soakDays, from, now = new Date() }) {
  const start = soakStart(repo, branch, app, release, from);
  if (start === undefined) {
    const current = pinnedReleases(fileAt(repo, branch, overlay(from)) ?? "")[app];
    return {
      ok: false,
      reason: `${app} ${release} is not what ${from} runs on ${branch} (${from} runs ${current ?? "nothing"}): it never soaked`,
    };
  }
  const days = (now.getTime() - start.date.getTime()) / DAY_MS;
  if (days < soakDays) {
    return {
      ok: false,
      start,
      reason:
        `${app} ${release} has been in ${from} on ${branch} for ${days.toFixed(1)} days (since ${start.date.toISOString()}, ${start.commit.slice(0, 12)}): ` +
        `${(soakDays - days).toFixed(1)} more day(s) of the ${soakDays}-day soak to go`,
    };
  }
  return { ok: true, start, reason: `${app} ${release} soaked ${days.toFixed(1)} days in ${from} (since ${start.commit.slice(0, 12)})` };
}

/**
 * What a pull request changes in what production runs besides its image pins: the shared base, any
 * other file of production's overlay, or its kustomization beyond `images:`. The guard cannot tell
 * what such a change would run, so it refuses it (make it in staging first, or override).
 */
function unreadableChanges(repo, base, to) {
  const changed = git(repo, "diff", "--name-only", base, "--", "apps/base", overlayDir(to)).split("\n").filter(Boolean);
  return changed.filter(
    (file) =>
      file !== overlay(to) || withoutImages(readFileSync(join(repo, file), "utf8")) !== withoutImages(fileAt(repo, base, file) ?? ""),
  );
}

/** Flux's view of staging: the revision apps-staging applied must contain the soak's start. */
function fluxSoakCheck(repo, start, kubectl, from) {
  let kustomization;
  try {
    kustomization = JSON.parse(kubectl(["get", "kustomization", `apps-${from}`, "-n", "flux-system", "-o", "json"]));
  } catch (error) {
    return {
      ok: false,
      reason: `could not read Flux's apps-${from} from the cluster (${firstLine(error)}): check --kubeconfig and --context`,
    };
  }
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
      reason: `Flux has not applied it in ${from}: apps-${from} is ${ready ? "Ready" : "not Ready"} at ${revision || "no revision"}`,
    };
  }
  return { ok: true, reason: `Flux applied ${revision} in ${from}` };
}

const firstLine = (error) => String(error?.message ?? error).split("\n")[0];

/**
 * Restarts of the app's containers in staging over the soak, from VictoriaMetrics. No data is not
 * "no restarts": an unreachable endpoint, an error or an empty answer refuses, naming the endpoint.
 */
async function restartCheck(metricsUrl, app, soakDays, timeoutMs, from) {
  // In minutes, so that a fraction of a day is a valid window too.
  const window = `${Math.max(1, Math.round(soakDays * 24 * 60))}m`;
  // From the kubelet's cAdvisor metrics (no kube-state-metrics needed): every run of a container
  // is a series of its own (its container ID is a label), so a pod's restarts in the window are the
  // runs of its container seen there, less one.
  const query = `count by (pod) (last_over_time(container_start_time_seconds{namespace="${from}",container="${app}"}[${window}])) - 1`;
  const endpoint = `${metricsUrl.replace(/\/$/, "")}/api/v1/query`;
  const unreadable = (what) => ({
    ok: false,
    reason:
      `cannot read ${app}'s restarts in ${from} from ${endpoint}: ${what}; ` +
      "point --metrics at the remote cluster's VictoriaMetrics (kubectl port-forward -n monitoring svc/victoria-metrics 8428)",
  });
  let body;
  try {
    const response = await fetch(`${endpoint}?query=${encodeURIComponent(query)}`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return unreadable(`it answered ${response.status}`);
    body = await response.json();
  } catch (error) {
    return unreadable(firstLine(error));
  }
  const result = body?.data?.result;
  if (body?.status !== "success" || !Array.isArray(result)) return unreadable("the answer is not a query result");
  if (result.length === 0) return unreadable(`it holds no container_start_time_seconds for ${app} in ${from} over the last ${window}`);
  const restarted = result.filter((series) => Number(series.value?.[1]) > 0);
  if (restarted.length > 0) {
    const pods = restarted.map((series) => `${series.metric.pod} (${Math.round(Number(series.value[1]))} restarts)`).join(", ");
    return { ok: false, reason: `${app} restarted in ${from} during the soak: ${pods}` };
  }
  return { ok: true, reason: `${app} never restarted in ${from} over the last ${soakDays} days` };
}

/** Production's `images:` entry for `app` becomes staging's: name, tag and digest alike. */
function setProductionRelease(repo, app, from, to) {
  const stagingEntry = parseDocument(readFileSync(join(repo, overlay(from)), "utf8"))
    .toJS()
    ?.images?.find((image) => image.name.split("/").pop() === app);
  const file = join(repo, overlay(to));
  const document = parseDocument(readFileSync(file, "utf8"));
  const entry = document.get("images")?.items.find((item) => String(item.get("name")).split("/").pop() === app);
  if (entry === undefined || stagingEntry === undefined) throw new Error(`${overlay(to)} pins no image for ${app}`);
  for (const key of ["newName", "newTag", "digest"]) {
    if (stagingEntry[key] === undefined) entry.delete(key);
    else entry.set(key, String(stagingEntry[key]));
  }
  writeFileSync(file, document.toString());
}

/** The owners CODEOWNERS gives production's overlay: the last matching pattern wins, as on GitHub. */
function productionOwners(codeownersText, to) {
  let owners = [];
  for (const line of codeownersText.split("\n")) {
    const [pattern, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!pattern) continue;
    const path = pattern
      .replace(/^\//, "")
      .replace(/\/?\*\*$/, "/")
      .replace(/\/?\*$/, "/");
    if (pattern === "*" || overlayDir(to).startsWith(path.endsWith("/") ? path : `${path}/`)) owners = names;
  }
  return owners;
}

/** Whether an override in --check is backed by a code owner's approval; if not, why. */
function overrideApproval(values, to) {
  const file = values.codeowners ?? join(values.repo, ".github", "CODEOWNERS");
  let owners;
  try {
    owners = productionOwners(readFileSync(file, "utf8"), to);
  } catch {
    return { ok: false, reason: `no CODEOWNERS at ${file}: nobody can approve an override` };
  }
  const approvers = (values["approved-by"] ?? "")
    .split(",")
    .map((login) => login.trim().replace(/^@/, ""))
    .filter(Boolean);
  const owner = approvers.find((login) => owners.includes(`@${login}`));
  if (owner === undefined) {
    return {
      ok: false,
      reason:
        `Soak-Override needs an approving review from a code owner of ${overlayDir(to)} (${owners.join(", ") || "none in CODEOWNERS"}); ` +
        `approved by: ${approvers.join(", ") || "nobody"}`,
    };
  }
  return { ok: true, reason: `override approved by code owner @${owner}` };
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      repo: { type: "string", default: "." },
      branch: { type: "string", default: "main" },
      base: { type: "string" },
      "soak-days": { type: "string", default: "7" },
      override: { type: "string" },
      "approved-by": { type: "string" },
      codeowners: { type: "string" },
      check: { type: "boolean", default: false },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      metrics: { type: "string" },
      timeout: { type: "string", default: "20" },
      from: { type: "string", default: "staging" },
      to: { type: "string", default: "production" },
    },
  });
  const { repo, from, to } = values;
  const soakDays = Number(values["soak-days"]);
  if (!Number.isFinite(soakDays) || soakDays < 0) throw new Error(`--soak-days ${values["soak-days"]} is not a number of days`);
  const timeoutMs = Number(values.timeout) * 1000;
  if (!(timeoutMs > 0)) throw new Error(`--timeout ${values.timeout} is not a number of seconds`);
  const kubectl = (args) =>
    execFileSync(
      "kubectl",
      [
        `--kubeconfig=${values.kubeconfig}`,
        ...(values.context ? [`--context=${values.context}`] : []),
        `--request-timeout=${values.timeout}s`,
        ...args,
      ],
      { encoding: "utf8", timeout: 2 * timeoutMs, stdio: ["ignore", "pipe", "pipe"] },
    );

  for (const env of [from, to]) {
    if (!existsSync(join(repo, overlay(env)))) {
      throw new Error(`no ${overlay(env)} under ${resolve(repo)}: run it from your GitOps repository's root, or pass --repo <its folder>`);
    }
  }
  // In --check mode, every app whose production release the change sets; else the one named.
  const base = values.base ?? values.branch;
  const production = pinnedReleases(readFileSync(join(repo, overlay(to)), "utf8"));
  const staging = pinnedReleases(readFileSync(join(repo, overlay(from)), "utf8"));
  const atBase = pinnedReleases(fileAt(repo, base, overlay(to)) ?? "");
  const candidates = values.check
    ? Object.entries(production).filter(([app, release]) => atBase[app] !== release)
    : positionals.map((app) => [app, staging[app]]);
  if (!values.check && candidates.length !== 1) throw new Error("name one app to promote, for example: promote podinfo");

  const refusals = [];
  if (values.check) {
    const unreadable = unreadableChanges(repo, base, to);
    if (unreadable.length > 0) {
      const reason =
        `${unreadable.join(", ")} change${unreadable.length === 1 ? "s" : ""} what ${to} runs beyond its image pins, ` +
        `which the guard cannot weigh: make the change in ${from}'s overlay first and promote it after the soak`;
      console.log(`refused: ${reason}`);
      refusals.push(reason);
    }
  }
  for (const [app, release] of candidates) {
    if (release === undefined) throw new Error(`${overlay(from)} pins no image for ${app}`);
    const verdicts = [soakVerdict(repo, { branch: values.branch, app, release, soakDays, from })];
    if (verdicts[0].ok && values.kubeconfig) verdicts.push(fluxSoakCheck(repo, verdicts[0].start, kubectl, from));
    if (verdicts[0].ok && values.metrics) verdicts.push(await restartCheck(values.metrics, app, soakDays, timeoutMs, from));
    for (const verdict of verdicts) console.log(`${verdict.ok ? "ok" : "refused"}: ${verdict.reason}`);
    const failed = verdicts.filter((verdict) => !verdict.ok);
    refusals.push(...failed.map((verdict) => verdict.reason));
    if (!values.check && (failed.length === 0 || values.override)) {
      if (failed.length > 0) console.error(`OVERRIDE: promoting ${app} ${release} anyway: ${values.override}`);
      setProductionRelease(repo, app, from, to);
      const trailer =
        failed.length > 0 ? `\n\nSoak-Override: ${values.override}\nRefused: ${failed.map((verdict) => verdict.reason).join("; ")}` : "";
      git(
        repo,
        "commit",
        "--quiet",
        "-m",
        `Promote ${app} ${release} to ${to}\n\n${verdicts.map((verdict) => verdict.reason).join("\n")}${trailer}`,
        "--",
        overlay(to),
      );
      console.log(`committed: ${git(repo, "log", "-1", "--format=%h %s")}`);
      return 0;
    }
  }
  if (values.check && refusals.length > 0 && values.override) {
    const approval = overrideApproval(values, to);
    if (approval.ok) {
      console.error(`OVERRIDE: accepting the ${to} change anyway (${approval.reason}): ${values.override}`);
      return 0;
    }
    console.error(`override refused: ${approval.reason}`);
  }
  if (refusals.length > 0) {
    console.error(`refusing to promote: ${refusals.join("; ")}`);
    return 1;
  }
  if (values.check) console.log(`every ${to} release soaked in ${from}`);
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

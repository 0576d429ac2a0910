// The soak guard's verdicts: has a release soaked in staging, by Git's history, Flux's status and
// the metrics, and what in a change it cannot weigh. Environment names are arguments (--from, --to);
// the comments say staging and production for them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { fileAt, git } from "./promote-git.mjs";

const DAY_MS = 24 * 60 * 60 * 1000;

export const overlayDir = (env) => `apps/overlays/${env}/`;
export const overlay = (env) => `${overlayDir(env)}kustomization.yaml`;
export const firstLine = (error) => String(error?.message ?? error).split("\n")[0];

/**
 * The release an overlay pins for each app (the image name's last path element): the image it
 * makes of it, as `name:tag@digest` (name and tag as the base has them where the entry leaves them).
 */
export function pinnedReleases(kustomizationText) {
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

/**
 * Since when `release` has been staging's release of `app` on `branch`, without interruption: the
 * first commit of the latest run of commits whose staging overlay pins it (first parents only,
 * so what counts is when it reached the branch). Undefined if staging does not pin it now.
 */
function soakStart(repo, branch, app, release, from) {
  const history = git(repo.dir, "log", "--first-parent", "--format=%H %cI", branch, "--", overlay(from))
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
export function soakVerdict(repo, { branch, app, release, soakDays, from, now = new Date() }) {
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
export function unreadableChanges(repo, base, to) {
  const changed = git(repo.dir, "diff", "--name-only", "--relative", base, "--", "apps/base", overlayDir(to)).split("\n").filter(Boolean);
  return changed.filter(
    (file) =>
      file !== overlay(to) || withoutImages(readFileSync(join(repo.dir, file), "utf8")) !== withoutImages(fileAt(repo, base, file) ?? ""),
  );
}

/** Flux's view of staging: the revision apps-staging applied must contain the soak's start. */
export function fluxSoakCheck(repo, start, kubectl, from) {
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
    git(repo.dir, "merge-base", "--is-ancestor", start.commit, applied);
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

/**
 * Restarts of the app's containers in staging over the soak, from VictoriaMetrics. No data is not
 * "no restarts": an unreachable endpoint, an error or an empty answer refuses, naming the endpoint.
 */
export async function restartCheck(metricsUrl, app, soakDays, timeoutMs, from) {
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

/**
 * Production's kustomization with its `images:` entry for `app` made staging's: name, tag and
 * digest alike; everything else (comments included) as it was.
 */
export function withRelease(productionText, stagingText, app, to) {
  const stagingEntry = parseDocument(stagingText)
    .toJS()
    ?.images?.find((image) => image.name.split("/").pop() === app);
  const document = parseDocument(productionText);
  const entry = document.get("images")?.items.find((item) => String(item.get("name")).split("/").pop() === app);
  if (entry === undefined || stagingEntry === undefined) throw new Error(`${overlay(to)} pins no image for ${app}`);
  for (const key of ["newName", "newTag", "digest"]) {
    if (stagingEntry[key] === undefined) entry.delete(key);
    else entry.set(key, String(stagingEntry[key]));
  }
  return document.toString();
}

/**
 * The owners CODEOWNERS gives production's overlay (`path`, from the repository's root): the last
 * matching pattern wins, as on GitHub.
 */
function productionOwners(codeownersText, path) {
  let owners = [];
  for (const line of codeownersText.split("\n")) {
    const [pattern, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!pattern) continue;
    const prefix = pattern
      .replace(/^\//, "")
      .replace(/\/?\*\*$/, "/")
      .replace(/\/?\*$/, "/");
    if (pattern === "*" || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`)) owners = names;
  }
  return owners;
}

/** Whether an override in --check is backed by a code owner's approval; if not, why. */
export function overrideApproval(repo, values, to) {
  const file = values.codeowners ?? join(repo.top, ".github", "CODEOWNERS");
  const path = `${repo.prefix}${overlayDir(to)}`;
  let owners;
  try {
    owners = productionOwners(readFileSync(file, "utf8"), path);
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
        `Soak-Override needs an approving review from a code owner of ${path} (${owners.join(", ") || "none in CODEOWNERS"}); ` +
        `approved by: ${approvers.join(", ") || "nobody"}`,
    };
  }
  return { ok: true, reason: `override approved by code owner @${owner}` };
}

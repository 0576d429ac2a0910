// What `promote <app>` and `promote --check` do with the soak guard's verdicts (promote.mjs reads
// the options and says what they are).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  branchHead,
  changedSinceFork,
  commitOf,
  commitOnNewBranch,
  fileAt,
  openRepository,
  remoteOf,
  requireIdentity,
} from "./promote-git.mjs";
import {
  fluxSoakCheck,
  overlay,
  overlayDir,
  overrideApproval,
  pinnedReleases,
  restartCheck,
  soakVerdict,
  unreadableChanges,
  withRelease,
} from "./promote-soak.mjs";

/** Runs the guard with promote.mjs's options; resolves to the exit status. */
export async function run(values, positionals) {
  const { from, to } = values;
  const soakDays = Number(values["soak-days"]);
  if (!Number.isFinite(soakDays) || soakDays < 0) throw new Error(`--soak-days ${values["soak-days"]} is not a number of days`);
  const timeoutMs = Number(values.timeout) * 1000;
  if (!(timeoutMs > 0)) throw new Error(`--timeout ${values.timeout} is not a number of seconds`);
  for (const env of [from, to]) {
    if (!existsSync(join(values.repo, overlay(env)))) {
      throw new Error(
        `no ${overlay(env)} under ${resolve(values.repo)}: run it from your GitOps repository's root, or pass --repo <its folder>`,
      );
    }
  }
  const repo = openRepository(values.repo);
  const guard = { repo, values, soakDays, timeoutMs };
  return values.check ? check(guard) : promote(guard, positionals);
}

/** Every verdict on `release` of `app`, printed as it comes; the first is the soak's. */
async function weigh({ repo, values, soakDays, timeoutMs }, app, release) {
  const { from } = values;
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
  const verdicts = [soakVerdict(repo, { branch: values.branch, app, release, soakDays, from })];
  if (verdicts[0].ok && values.kubeconfig) verdicts.push(fluxSoakCheck(repo, verdicts[0].start, kubectl, from));
  if (verdicts[0].ok && values.metrics) verdicts.push(await restartCheck(values.metrics, app, soakDays, timeoutMs, from));
  for (const verdict of verdicts) console.log(`${verdict.ok ? "ok" : "refused"}: ${verdict.reason}`);
  return verdicts;
}

/** The promotion's branch: the app and its tag, and the digest's start when it pins one. */
function promotionBranch(app, release) {
  const [image, digest] = release.split("@");
  const tag = image.slice(image.lastIndexOf(":") + 1);
  return `promote/${[app, ...(tag === "(base tag)" ? [] : [tag]), ...(digest ? [digest.replace(/^sha256:/, "").slice(0, 12)] : [])].join("-")}`;
}

/**
 * Promotes staging's release of one app as a commit on a new branch from --branch, for a pull
 * request: a protected main takes no direct push, and the pull request is where the soak-guard
 * check and the code owners weigh it. Everything is read from --branch, where the soak is measured,
 * not from the checkout, which may be anywhere.
 */
async function promote(guard, positionals) {
  const { repo, values } = guard;
  const { from, to, branch } = values;
  if (positionals.length !== 1) throw new Error("name one app to promote, for example: npm run promote -- podinfo");
  const [app] = positionals;
  const base = commitOf(repo, branch);
  requireIdentity(repo);
  const stagingText = fileAt(repo, base, overlay(from)) ?? "";
  const productionText = fileAt(repo, base, overlay(to)) ?? "";
  const release = pinnedReleases(stagingText)[app];
  if (release === undefined) throw new Error(`${overlay(from)} on ${branch} pins no image for ${app}`);
  if (pinnedReleases(productionText)[app] === release) {
    throw new Error(`${to} already runs ${app} ${release} on ${branch}: nothing to promote`);
  }
  const promoted = withRelease(productionText, stagingText, app, to);
  const target = promotionBranch(app, release);
  const remote = remoteOf(repo, branch);
  const existing = branchHead(repo, target);
  if (existing !== undefined) {
    throw new Error(
      `branch ${target} already exists (${existing}): push it and open its pull request (git push -u ${remote} ${target}), ` +
        `or delete it (git branch -D ${target}) and promote again`,
    );
  }

  const verdicts = await weigh(guard, app, release);
  const failed = verdicts.filter((verdict) => !verdict.ok);
  if (failed.length > 0 && !values.override) {
    console.error(`refusing to promote: ${failed.map((verdict) => verdict.reason).join("; ")}`);
    return 1;
  }
  if (failed.length > 0) console.error(`OVERRIDE: promoting ${app} ${release} anyway: ${values.override}`);
  const trailer =
    failed.length > 0 ? `\n\nSoak-Override: ${values.override}\nRefused: ${failed.map((verdict) => verdict.reason).join("; ")}` : "";
  const committed = commitOnNewBranch(repo, {
    base,
    branch: target,
    file: overlay(to),
    text: promoted,
    message: `Promote ${app} ${release} to ${to}\n\n${verdicts.map((verdict) => verdict.reason).join("\n")}${trailer}`,
  });
  console.log(`committed on a new branch ${target}, started at ${branch} (your checkout is as it was): ${committed}`);
  console.log(`next: push it and open a pull request into ${branch}, where the soak-guard check and ${to}'s code owners weigh it:`);
  console.log(`  git push -u ${remote} ${target}`);
  console.log(`  gh pr create --base ${branch} --head ${target} --fill    # or open the link git push prints`);
  return 0;
}

/**
 * The pull-request check: refuses any production release the checked-out tree sets that has not
 * soaked, and any change to what production runs that it cannot weigh.
 */
async function check(guard) {
  const { repo, values } = guard;
  const { from, to } = values;
  const base = values.base ?? values.branch;
  const weighed = ["apps/base/", overlayDir(to)];
  // Required checks must report on every pull request; one that leaves production alone has nothing to weigh.
  if (changedSinceFork(repo, base, weighed)?.length === 0) {
    console.log(`ok: nothing to weigh: this change leaves ${weighed.join(" and ")} as they are, so what ${to} runs does not change`);
    return 0;
  }
  const production = pinnedReleases(readFileSync(join(repo.dir, overlay(to)), "utf8"));
  const atBase = pinnedReleases(fileAt(repo, base, overlay(to)) ?? "");
  const refusals = [];
  const unreadable = unreadableChanges(repo, base, to);
  if (unreadable.length > 0) {
    const reason =
      `${unreadable.join(", ")} change${unreadable.length === 1 ? "s" : ""} what ${to} runs beyond its image pins, ` +
      `which the guard cannot weigh: make the change in ${from}'s overlay first and promote it after the soak`;
    console.log(`refused: ${reason}`);
    refusals.push(reason);
  }
  for (const [app, release] of Object.entries(production).filter(([app, release]) => atBase[app] !== release)) {
    const verdicts = await weigh(guard, app, release);
    refusals.push(...verdicts.filter((verdict) => !verdict.ok).map((verdict) => verdict.reason));
  }
  if (refusals.length > 0 && values.override) {
    const approval = overrideApproval(repo, values, to);
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
  console.log(`every ${to} release soaked in ${from}`);
  return 0;
}

/**
 * The soak guard (gitops/scripts/promote.mjs) over real Git repositories whose commits are
 * back-dated, as a week of soak would have dated them: promotion allowed at 7 days, refused at 6,
 * refused for a tag that never ran in staging, refused on restarts, and the logged override.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./lib/program";

const SCRIPT = path.join(ROOT, "gitops/scripts/promote.mjs");
const DAY = 24 * 60 * 60 * 1000;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "promote-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const STAGING = "apps/overlays/staging/kustomization.yaml";
const PRODUCTION = "apps/overlays/production/kustomization.yaml";

interface Repo {
  readonly dir: string;
  git(...args: string[]): string;
  /** Sets `app`'s tag in an overlay and commits it as of `daysAgo` days before now. */
  pin(env: "staging" | "production", tag: string, daysAgo: number): string;
  tag(env: "staging" | "production", at?: string): string;
}

/** A GitOps repository seeded from gitops/, with its first commit 30 days old. */
function gitopsRepo(): Repo {
  const dir = fs.mkdtempSync(path.join(scratch, "gitops-"));
  fs.cpSync(path.join(ROOT, "gitops"), dir, { recursive: true });
  const git = (...args: string[]) => {
    const date = process.env.COMMIT_DATE ?? new Date().toISOString();
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: "ops",
      GIT_AUTHOR_EMAIL: "ops@acme.invalid",
      GIT_COMMITTER_NAME: "ops",
      GIT_COMMITTER_EMAIL: "ops@acme.invalid",
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
    };
    const result = spawnSync("git", ["-C", dir, ...args], { encoding: "utf8", env });
    if (result.status !== 0) throw new Error(`git ${args.join(" ")}: ${result.stderr}`);
    return result.stdout.trim();
  };
  const commitAt = (daysAgo: number, message: string) => {
    process.env.COMMIT_DATE = new Date(Date.now() - daysAgo * DAY).toISOString();
    try {
      git("add", "--all");
      git("commit", "--quiet", "-m", message);
    } finally {
      delete process.env.COMMIT_DATE;
    }
    return git("rev-parse", "HEAD");
  };
  git("init", "--quiet", "--initial-branch=main");
  commitAt(30, "Seed from the starter");
  const file = (env: string) => path.join(dir, env === "staging" ? STAGING : PRODUCTION);
  return {
    dir,
    git,
    pin(env, tag, daysAgo) {
      const text = fs.readFileSync(file(env), "utf8").replace(/newTag: "[^"]*"/, `newTag: "${tag}"`);
      fs.writeFileSync(file(env), text);
      return commitAt(daysAgo, `Run podinfo ${tag} in ${env}`);
    },
    tag: (env, at) =>
      /newTag: "?([^"\n]+)"?/.exec(
        at === undefined ? fs.readFileSync(file(env), "utf8") : git("show", `${at}:${env === "staging" ? STAGING : PRODUCTION}`),
      )![1],
  };
}

function promote(repo: Repo, ...args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [SCRIPT, "--repo", repo.dir, ...args], { encoding: "utf8" });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe("npm run promote -- podinfo", () => {
  it("promotes what has been in staging on main for 7 days, as a commit that says why", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 7.01);
    const result = promote(repo, "podinfo");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(repo.tag("production", "HEAD")).toBe("6.15.0");
    expect(repo.git("log", "-1", "--format=%B")).toMatch(
      /^Promote podinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 to production\n\npodinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 soaked 7\.0 days in staging/,
    );
  });

  it("refuses at 6 days, saying which app, which tag and how many days are left, and commits nothing", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 6);
    const head = repo.git("rev-parse", "HEAD");
    const result = promote(repo, "podinfo");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /refusing to promote: podinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 has been in staging on main for 6\.0 days .*: 1\.0 more day\(s\) of the 7-day soak to go/,
    );
    expect(repo.git("rev-parse", "HEAD")).toBe(head);
    expect(repo.tag("production")).toBe("6.14.1");
  });

  it("counts the soak from the tag's latest arrival in staging, not an earlier one", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 20);
    repo.pin("staging", "6.14.1", 10);
    repo.pin("staging", "6.15.0", 2);
    expect(promote(repo, "podinfo").stderr).toMatch(/for 2\.0 days/);
  });

  it("follows a client's own environment names with --from and --to", () => {
    const repo = gitopsRepo();
    repo.git("mv", "apps/overlays/staging", "apps/overlays/soak");
    repo.git("mv", "apps/overlays/production", "apps/overlays/live");
    const soak = path.join(repo.dir, "apps/overlays/soak/kustomization.yaml");
    fs.writeFileSync(soak, fs.readFileSync(soak, "utf8").replace(/newTag: "[^"]*"/, 'newTag: "6.15.0"'));
    process.env.COMMIT_DATE = new Date(Date.now() - 8 * DAY).toISOString();
    try {
      repo.git("commit", "--quiet", "--all", "-m", "Name the environments soak and live; run podinfo 6.15.0 in soak");
    } finally {
      delete process.env.COMMIT_DATE;
    }
    expect(promote(repo, "podinfo").stderr).toContain("no apps/overlays/staging/kustomization.yaml under");
    const result = promote(repo, "podinfo", "--from", "soak", "--to", "live");
    expect(result.stderr).toBe("");
    expect(repo.git("log", "-1", "--format=%B")).toMatch(
      /^Promote podinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 to live\n\n.* soaked 8\.0 days in soak/,
    );
    expect(repo.git("show", "HEAD:apps/overlays/live/kustomization.yaml")).toContain('newTag: "6.15.0"');
  });

  it("takes a configurable soak period", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 2.5);
    expect(promote(repo, "podinfo", "--soak-days", "2").status).toBe(0);
  });

  it("refuses when the app's containers restarted in staging during the soak, naming the pod", async () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 8);
    const queries: string[] = [];
    const metrics = http.createServer((request, response) => {
      queries.push(new URL(request.url!, "http://metrics").searchParams.get("query")!);
      response.setHeader("content-type", "application/json");
      response.end(
        JSON.stringify({
          status: "success",
          data: { resultType: "vector", result: [{ metric: { pod: "podinfo-7d9f8-abcde" }, value: [0, "2"] }] },
        }),
      );
    });
    await new Promise<void>((resolve) => metrics.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = metrics.address() as { port: number };
      const result = await new Promise<{ status: number; stderr: string }>((resolve) => {
        let stderr = "";
        // Not spawnSync: this process must stay free to answer the metrics query.
        const child = spawn(process.execPath, [SCRIPT, "--repo", repo.dir, "podinfo", "--metrics", `http://127.0.0.1:${port}`]);
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (status) => resolve({ status: status ?? -1, stderr }));
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain("podinfo restarted in staging during the soak: podinfo-7d9f8-abcde (2 restarts)");
      expect(queries).toEqual([
        'count by (pod) (last_over_time(container_start_time_seconds{namespace="staging",container="podinfo"}[10080m])) - 1',
      ]);
      expect(repo.tag("production")).toBe("6.14.1");
    } finally {
      metrics.close();
    }
  });

  it.each([
    [
      "nothing listens there",
      () => "http://127.0.0.1:9",
      /cannot read podinfo's restarts in staging from http:\/\/127\.0\.0\.1:9\/api\/v1\/query: fetch failed/,
    ],
    [
      "it answers with no data for the app",
      (port: number) => `http://127.0.0.1:${port}/empty`,
      /it holds no container_start_time_seconds for podinfo in staging over the last 10080m/,
    ],
    ["it never answers", (port: number) => `http://127.0.0.1:${port}/hang`, /cannot read podinfo's restarts .*(aborted|timeout)/i],
  ])("refuses when monitoring cannot vouch for the soak: %s", async (_what, url, refusal) => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 8);
    const metrics = http.createServer((request, response) => {
      if (request.url!.startsWith("/hang")) return;
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ status: "success", data: { resultType: "vector", result: [] } }));
    });
    await new Promise<void>((resolve) => metrics.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = metrics.address() as { port: number };
      const result = await new Promise<{ status: number; stderr: string }>((resolve) => {
        let stderr = "";
        const args = [SCRIPT, "--repo", repo.dir, "podinfo", "--metrics", url(port), "--timeout", "1"];
        const child = spawn(process.execPath, args);
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (status) => resolve({ status: status ?? -1, stderr }));
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(refusal);
      expect(result.stderr).toContain("kubectl port-forward -n monitoring svc/victoria-metrics 8428");
      expect(repo.tag("production")).toBe("6.14.1");
    } finally {
      metrics.closeAllConnections();
      metrics.close();
    }
  });

  it("promotes anyway with an explicit override, and the commit records why and what was refused", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 1);
    const result = promote(repo, "podinfo", "--override", "CVE-2026-1234 fix cannot wait");
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(
      "OVERRIDE: promoting podinfo ghcr.io/stefanprodan/podinfo:6.15.0 anyway: CVE-2026-1234 fix cannot wait",
    );
    const message = repo.git("log", "-1", "--format=%B");
    expect(message).toContain("Soak-Override: CVE-2026-1234 fix cannot wait");
    expect(message).toMatch(/Refused: podinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 has been in staging on main for 1\.0 days/);
    expect(repo.tag("production", "HEAD")).toBe("6.15.0");
  });
});

it("run outside a GitOps repository (npm run promote from the Pulumi project's root), says where to run it", () => {
  const result = spawnSync(process.execPath, [SCRIPT, "podinfo"], { encoding: "utf8", cwd: ROOT });
  expect(result.status).toBe(2);
  expect(result.stderr).toContain(
    `promote: no apps/overlays/staging/kustomization.yaml under ${ROOT}: run it from your GitOps repository's root, or pass --repo <its folder>`,
  );
});

describe("the pull-request check (promote --check)", () => {
  /** A pull request's branch that changes production's tag by hand. */
  const pullRequest = (repo: Repo, tag: string) => {
    repo.git("checkout", "--quiet", "-b", "hurried");
    repo.pin("production", tag, 0);
  };

  it("fails a pull request that puts in production a tag that never ran in staging", () => {
    const repo = gitopsRepo();
    pullRequest(repo, "6.16.0");
    const result = promote(repo, "--check");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      "podinfo ghcr.io/stefanprodan/podinfo:6.16.0 is not what staging runs on main (staging runs ghcr.io/stefanprodan/podinfo:6.14.1): it never soaked",
    );
  });

  it("fails it the same when the script is started through a link whose path has a space", () => {
    const repo = gitopsRepo();
    pullRequest(repo, "6.16.0");
    const link = path.join(fs.mkdtempSync(path.join(scratch, "tools ")), "soak guard.mjs");
    fs.symlinkSync(SCRIPT, link);
    const result = spawnSync(process.execPath, [link, "--repo", repo.dir, "--check"], { encoding: "utf8" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      "podinfo ghcr.io/stefanprodan/podinfo:6.16.0 is not what staging runs on main (staging runs ghcr.io/stefanprodan/podinfo:6.14.1): it never soaked",
    );
  });

  it("fails one whose tag has not soaked yet, and passes one whose tag has", () => {
    const early = gitopsRepo();
    early.pin("staging", "6.15.0", 3);
    pullRequest(early, "6.15.0");
    expect(promote(early, "--check").stderr).toMatch(/4\.0 more day\(s\)/);
    const soaked = gitopsRepo();
    soaked.pin("staging", "6.15.0", 9);
    pullRequest(soaked, "6.15.0");
    const result = promote(soaked, "--check");
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("every production release soaked in staging");
  });

  it("compares what would run: a new image name or digest under a soaked tag never soaked", () => {
    for (const [what, entry] of [
      ["another registry", 'newName: registry.evil.io/podinfo\n    newTag: "6.14.1"'],
      ["a digest staging never ran", 'newTag: "6.14.1"\n    digest: sha256:' + "a".repeat(64)],
    ]) {
      const repo = gitopsRepo();
      repo.git("checkout", "--quiet", "-b", "sneaky");
      const file = path.join(repo.dir, PRODUCTION);
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/newTag: "[^"]*"/, entry));
      repo.git("commit", "--quiet", "--all", "-m", `Run ${what} in production`);
      const result = promote(repo, "--check");
      expect(result.status, what).toBe(1);
      expect(result.stderr, what).toMatch(/it never soaked/);
    }
  });

  it.each([
    ["an image patched into production's own files", "apps/overlays/production/podinfo-deployment.yaml"],
    ["a change to the base both environments share", "apps/base/podinfo/deployment.yaml"],
  ])("refuses %s, which it cannot weigh, naming the file", (_what, file) => {
    const repo = gitopsRepo();
    repo.git("checkout", "--quiet", "-b", "around");
    fs.appendFileSync(path.join(repo.dir, file), "# changed\n");
    repo.git("commit", "--quiet", "--all", "-m", "Change what production runs another way");
    const result = promote(repo, "--check");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`${file} changes what production runs beyond its image pins`);
  });

  it("takes an override only with an approving review from a code owner of production's overlay", () => {
    const repo = gitopsRepo();
    pullRequest(repo, "6.16.0");
    const override = ["--check", "--override", "CVE fix"];
    const alone = promote(repo, ...override);
    expect(alone.status).toBe(1);
    expect(alone.stderr).toContain(
      "override refused: Soak-Override needs an approving review from a code owner of apps/overlays/production/ (@acme-platform-lead, @acme-release-manager); approved by: nobody",
    );
    expect(promote(repo, ...override, "--approved-by", "mallory").status).toBe(1);
    const approved = promote(repo, ...override, "--approved-by", "mallory,acme-release-manager");
    expect(approved.status).toBe(0);
    expect(approved.stderr).toContain(
      "OVERRIDE: accepting the production change anyway (override approved by code owner @acme-release-manager): CVE fix",
    );
  });

  it("passes a pull request that leaves production's releases alone", () => {
    const repo = gitopsRepo();
    repo.git("checkout", "--quiet", "-b", "docs");
    expect(promote(repo, "--check").status).toBe(0);
  });
});

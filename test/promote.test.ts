/**
 * The soak guard (gitops/scripts/promote.mjs) over real Git repositories whose commits are
 * back-dated, as a week of soak would have dated them: promotion allowed at 7 days (as a commit on a
 * branch of its own, for a pull request), refused at 6, refused for a tag that never ran in staging,
 * refused on restarts, the logged override, and what it says when it cannot promote at all.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./lib/program";
import { IDENTITY, PRODUCTION, Repo, SCRIPT, STAGING, gitopsRepo, promote, runScript, scratch } from "./lib/promoteRepo";

const ENV = { ...process.env, ...IDENTITY };
const BRANCH = "promote/podinfo-6.15.0";
const FAST_PASS =
  "ok: nothing to weigh: this change leaves apps/base/ and apps/overlays/production/ as they are, so what production runs does not change";

describe("npm run promote -- podinfo", () => {
  it("promotes what has been in staging on main for 7 days, as a commit on a branch of its own that says why", () => {
    const repo = gitopsRepo();
    const main = repo.pin("staging", "6.15.0", 7.01);
    const result = promote(repo, "podinfo");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(repo.tag("production", BRANCH)).toBe("6.15.0");
    expect(repo.git("rev-parse", `${BRANCH}^`)).toBe(main);
    expect(repo.git("diff", "--name-only", "main", BRANCH)).toBe(PRODUCTION);
    expect(repo.git("log", "-1", "--format=%B", BRANCH)).toMatch(
      /^Promote podinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 to production\n\npodinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 soaked 7\.0 days in staging/,
    );
    expect(result.stdout).toContain(
      [
        `committed on a new branch ${BRANCH}, started at main (your checkout is as it was): ${repo.git("log", "-1", "--format=%h %s", BRANCH)}`,
        "next: push it and open a pull request into main, where the soak-guard check and production's code owners weigh it:",
        `  git push -u origin ${BRANCH}`,
        `  gh pr create --base main --head ${BRANCH} --fill    # or open the link git push prints`,
      ].join("\n"),
    );
    // main, which a protected branch would refuse to take a push to, is where it was.
    expect(repo.git("rev-parse", "main")).toBe(main);
    expect(repo.git("symbolic-ref", "--short", "HEAD")).toBe("main");
    expect(repo.git("status", "--porcelain")).toBe("");
  });

  it("leaves the checkout alone: another branch checked out and uncommitted work stay as they were", () => {
    const repo = gitopsRepo();
    const main = repo.pin("staging", "6.15.0", 8);
    repo.git("checkout", "--quiet", "-b", "work");
    fs.appendFileSync(path.join(repo.dir, PRODUCTION), "# half-done\n");
    fs.writeFileSync(path.join(repo.dir, "notes.txt"), "draft\n");
    repo.git("add", "notes.txt");
    const status = repo.git("status", "--porcelain");
    expect(promote(repo, "podinfo").status).toBe(0);
    expect(repo.git("symbolic-ref", "--short", "HEAD")).toBe("work");
    expect(repo.git("status", "--porcelain")).toBe(status);
    expect(fs.readFileSync(path.join(repo.dir, PRODUCTION), "utf8")).toContain("# half-done");
    expect(repo.git("rev-parse", `${BRANCH}^`)).toBe(main);
    expect(repo.git("show", `${BRANCH}:${PRODUCTION}`)).not.toContain("# half-done");
  });

  it("names the branch after the digest too when staging pins one: a retagged image is another release", () => {
    const repo = gitopsRepo();
    const file = path.join(repo.dir, STAGING);
    fs.writeFileSync(
      file,
      fs.readFileSync(file, "utf8").replace(/newTag: "[^"]*"/, `newTag: "6.15.0"\n    digest: sha256:${"ab".repeat(32)}`),
    );
    repo.commitAt(8, "Run podinfo 6.15.0 by digest in staging");
    expect(promote(repo, "podinfo").status).toBe(0);
    expect(repo.git("show", `${BRANCH}-abababababab:${PRODUCTION}`)).toContain(`digest: sha256:${"ab".repeat(32)}`);
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
    expect(repo.git("branch", "--list", "promote/*")).toBe("");
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
    repo.commitAt(8, "Name the environments soak and live; run podinfo 6.15.0 in soak");
    expect(promote(repo, "podinfo").stderr).toContain("no apps/overlays/staging/kustomization.yaml under");
    const result = promote(repo, "podinfo", "--from", "soak", "--to", "live");
    expect(result.stderr).toBe("");
    expect(repo.git("log", "-1", "--format=%B", BRANCH)).toMatch(
      /^Promote podinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 to live\n\n.* soaked 8\.0 days in soak/,
    );
    expect(repo.git("show", `${BRANCH}:apps/overlays/live/kustomization.yaml`)).toContain('newTag: "6.15.0"');
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
        const child = spawn(process.execPath, [SCRIPT, "--repo", repo.dir, "podinfo", "--metrics", `http://127.0.0.1:${port}`], {
          env: ENV,
        });
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
        const child = spawn(process.execPath, args, { env: ENV });
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
    const message = repo.git("log", "-1", "--format=%B", BRANCH);
    expect(message).toContain("Soak-Override: CVE-2026-1234 fix cannot wait");
    expect(message).toMatch(/Refused: podinfo ghcr\.io\/stefanprodan\/podinfo:6\.15\.0 has been in staging on main for 1\.0 days/);
    expect(repo.git("log", "-1", "--format=%(trailers:key=Soak-Override,valueonly)", BRANCH)).toBe("CVE-2026-1234 fix cannot wait");
    expect(repo.tag("production", BRANCH)).toBe("6.15.0");
  });
});

describe("what promote says when it cannot promote: one line, exit status 2, no branch", () => {
  /** The run's complaint, checked to be the one line that says it, with no stack trace behind it. */
  const refusal = (result: { status: number; stdout: string; stderr: string }) => {
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    return result.stderr.trim();
  };

  it("production already runs staging's release", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 9);
    repo.pin("production", "6.15.0", 1);
    expect(refusal(promote(repo, "podinfo"))).toBe(
      "promote: production already runs podinfo ghcr.io/stefanprodan/podinfo:6.15.0 on main: nothing to promote",
    );
    expect(repo.git("branch", "--list", "promote/*")).toBe("");
  });

  it("the branch exists already, from an earlier run", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 8);
    expect(promote(repo, "podinfo").status).toBe(0);
    const earlier = repo.git("rev-parse", BRANCH);
    expect(refusal(promote(repo, "podinfo"))).toBe(
      `promote: branch ${BRANCH} already exists (${repo.git("log", "-1", "--format=%h %s", BRANCH)}): ` +
        `push it and open its pull request (git push -u origin ${BRANCH}), or delete it (git branch -D ${BRANCH}) and promote again`,
    );
    expect(repo.git("rev-parse", BRANCH)).toBe(earlier);
  });

  it("Git does not know who the user is", () => {
    const repo = gitopsRepo();
    repo.pin("staging", "6.15.0", 8);
    const home = fs.mkdtempSync(path.join(scratch, "home-"));
    const anonymous = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^GIT_|^EMAIL$/.test(name)));
    const env = { ...anonymous, HOME: home, XDG_CONFIG_HOME: home, GIT_CONFIG_GLOBAL: path.join(home, "none"), GIT_CONFIG_NOSYSTEM: "1" };
    expect(refusal(runScript(SCRIPT, ["--repo", repo.dir, "podinfo"], env))).toBe(
      "promote: Git does not know who you are (user.name and user.email), and the promotion's commit must say who promoted: " +
        'git config --global user.name "Your Name" && git config --global user.email you@example.com, then promote again',
    );
    expect(repo.git("branch", "--list", "promote/*")).toBe("");
    repo.git("config", "user.name", "Olga Ops");
    repo.git("config", "user.email", "olga@acme.invalid");
    expect(runScript(SCRIPT, ["--repo", repo.dir, "podinfo"], env).status).toBe(0);
    expect(repo.git("log", "-1", "--format=%an <%ae>", BRANCH)).toBe("Olga Ops <olga@acme.invalid>");
  });

  it("the branch to promote from does not exist", () => {
    const repo = gitopsRepo();
    repo.git("branch", "--move", "main", "trunk");
    expect(refusal(promote(repo, "podinfo"))).toBe(
      `promote: there is no branch main in ${repo.top}: pass --branch <the branch Flux syncs>`,
    );
  });

  it("the folder is not in a Git repository", () => {
    const dir = fs.mkdtempSync(path.join(scratch, "plain-"));
    fs.cpSync(path.join(ROOT, "gitops/apps"), path.join(dir, "apps"), { recursive: true });
    const message = `promote: ${dir} is not in a Git repository: run promote in your clone of the GitOps repository`;
    expect(refusal(runScript(SCRIPT, ["--repo", dir, "podinfo"]))).toBe(message);
  });

  it("the copy of gitops/ has not had its npm ci yet, while --help needs none", () => {
    const fresh = fs.mkdtempSync(path.join(scratch, "fresh-"));
    fs.cpSync(path.join(ROOT, "gitops/scripts"), path.join(fresh, "scripts"), { recursive: true });
    fs.copyFileSync(path.join(ROOT, "gitops/package.json"), path.join(fresh, "package.json"));
    const repo = gitopsRepo();
    const script = path.join(fresh, "scripts/promote.mjs");
    expect(refusal(runScript(script, ["--repo", repo.dir, "podinfo"]))).toBe(
      `promote: its dependency yaml is not installed: run npm ci in ${fs.realpathSync(fresh)} first`,
    );
    const help = runScript(script, ["--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run promote -- <app> \[options\]/);
  });
});

it("prints its usage with --help, every option the guard takes among it, and refuses an unknown one", () => {
  for (const flag of ["--help", "-h"]) {
    const help = runScript(SCRIPT, [flag]);
    expect(help.status, flag).toBe(0);
    expect(help.stderr, flag).toBe("");
    for (const option of [
      "repo",
      "branch",
      "from",
      "to",
      "soak-days",
      "override",
      "kubeconfig",
      "context",
      "metrics",
      "timeout",
      "check",
    ]) {
      expect(help.stdout, option).toMatch(new RegExp(`^  --${option}\\b`, "m"));
    }
    for (const option of ["base", "approved-by", "codeowners"])
      expect(help.stdout, option).toMatch(new RegExp(`^  --${option} .*\\n +\\(--check\\)`, "m"));
  }
  const unknown = runScript(SCRIPT, ["podinfo", "--dry-run"]);
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toBe("promote: Unknown option '--dry-run' (--help lists the options)\n");
});

it("signs the promotion's commit when the user signs commits (commit.gpgSign)", () => {
  const repo = gitopsRepo();
  repo.pin("staging", "6.15.0", 8);
  // A stand-in for gpg that signs anything: git asks for the signature and its status line.
  const gpg = path.join(fs.mkdtempSync(path.join(scratch, "gpg-")), "gpg");
  fs.writeFileSync(
    gpg,
    "#!/bin/sh\ncat >/dev/null\nprintf '\\n[GNUPG:] SIG_CREATED D 1 8 00 0 X\\n' >&2\nprintf -- '-----BEGIN PGP SIGNATURE-----\\n\\nstand-in\\n-----END PGP SIGNATURE-----\\n'\n",
    { mode: 0o755 },
  );
  repo.git("config", "gpg.program", gpg);
  repo.git("config", "commit.gpgSign", "true");
  expect(promote(repo, "podinfo").status).toBe(0);
  expect(repo.git("cat-file", "commit", BRANCH)).toContain("gpgsig -----BEGIN PGP SIGNATURE-----");
});

describe("a GitOps folder inside a larger repository (a monorepo)", () => {
  const monorepo = () => {
    const repo = gitopsRepo("platform/gitops");
    repo.pin("staging", "6.15.0", 8);
    return repo;
  };

  it("promotes from the folder, reading main's history of the folder's overlays", () => {
    const repo = monorepo();
    const result = promote(repo, "podinfo");
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("ok: podinfo ghcr.io/stefanprodan/podinfo:6.15.0 soaked 8.0 days in staging");
    expect(repo.git("diff", "--name-only", "main", BRANCH)).toBe(`platform/gitops/${PRODUCTION}`);
    expect(repo.tag("production", BRANCH)).toBe("6.15.0");
  });

  it("checks a pull request there, with the code owners the root's CODEOWNERS gives the folder", () => {
    const repo = monorepo();
    repo.git("checkout", "--quiet", "-b", "hurried");
    repo.pin("production", "6.16.0", 0);
    const codeowners = path.join(repo.top, "CODEOWNERS");
    fs.writeFileSync(codeowners, "*  @acme-lead\n/platform/gitops/apps/overlays/production/  @acme-release-manager\n");
    const refused = promote(repo, "--check", "--override", "CVE fix", "--codeowners", codeowners, "--approved-by", "acme-lead");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(
      "is not what staging runs on main (staging runs ghcr.io/stefanprodan/podinfo:6.15.0): it never soaked",
    );
    expect(refused.stderr).toContain(
      "override refused: Soak-Override needs an approving review from a code owner of platform/gitops/apps/overlays/production/ (@acme-release-manager)",
    );
    expect(
      promote(repo, "--check", "--override", "CVE fix", "--codeowners", codeowners, "--approved-by", "acme-release-manager").status,
    ).toBe(0);
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

  /** A repository with a branch `name` off main that only adds a note to the README, main checked out again. */
  const withNoteBranch = (name: string) => {
    const repo = gitopsRepo();
    repo.git("checkout", "--quiet", "-b", name);
    fs.appendFileSync(path.join(repo.dir, "README.md"), "A note.\n");
    repo.commitAt(0, "Add a note");
    repo.git("checkout", "--quiet", "main");
    return repo;
  };

  it("passes at once a pull request opened before the latest promotion, which it leaves alone", () => {
    const repo = withNoteBranch("docs");
    repo.pin("staging", "6.15.0", 9);
    repo.pin("production", "6.15.0", 1);
    repo.git("checkout", "--quiet", "docs");
    // Compared with main's tip, production's tag differs (6.14.1 against 6.15.0), but not by this pull request's doing.
    const result = promote(repo, "--check");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(`${FAST_PASS}\n`);
  });

  it("weighs in full a pull request that brings back what a fork point had, however the merges criss-cross", () => {
    const repo = withNoteBranch("tricky");
    fs.appendFileSync(path.join(repo.dir, "apps/base/podinfo/deployment.yaml"), "# reviewed on main\n");
    const onMain = repo.commitAt(0, "Change the base on main");
    repo.git("merge", "--quiet", "--no-edit", "tricky");
    // The pull request takes main's commit in name only, keeping the base as it had it.
    repo.git("checkout", "--quiet", "tricky");
    repo.git("merge", "--quiet", "--no-edit", "--strategy=ours", onMain);
    expect(repo.git("merge-base", "--all", "main", "tricky").split("\n")).toHaveLength(2);
    const result = promote(repo, "--check");
    expect(result.stdout).not.toContain(FAST_PASS);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("apps/base/podinfo/deployment.yaml changes what production runs beyond its image pins");
  });
});

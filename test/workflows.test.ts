/**
 * The pull-request preview hands the remote stack's credentials to whatever code a pull request
 * brings: these tests hold the workflow to least privilege, reading it as GitHub would.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "./lib/program";
import { gitopsRepo, scratch } from "./lib/promoteRepo";

type Job = { if?: string; environment?: string | { name: string }; permissions?: Record<string, string>; steps: Record<string, any>[] };
type Workflow = { on: Record<string, any>; permissions: Record<string, string>; jobs: Record<string, Job> };

const workflow = (): Workflow => parse(fs.readFileSync(path.join(ROOT, ".github/workflows/preview.yml"), "utf8")) as Workflow;
const secretsUsed = (job: Job) => [...JSON.stringify(job.steps).matchAll(/secrets\.([A-Z_]+)/g)].map((match) => match[1]).sort();

/** Every job that can read a secret, and the secrets it reads. */
function jobsWithSecrets(flow: Workflow): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(flow.jobs)
      .map(([name, job]) => [name, secretsUsed(job)] as const)
      .filter(([, secrets]) => secrets.length > 0),
  );
}

describe("the pull-request preview", () => {
  it("never runs on pull_request_target, which would hand a fork's code the base repository's secrets", () => {
    expect(Object.keys(workflow().on).sort()).toEqual(["pull_request", "push"]);
  });

  it("grants the token read access by default, and the preview only what posting its comment needs", () => {
    const flow = workflow();
    expect(flow.permissions).toEqual({ contents: "read" });
    expect(flow.jobs["preview-remote"].permissions).toEqual({ contents: "read", "pull-requests": "write" });
  });

  it("reads secrets in one job only, gated by the protected preview environment and never for a fork", () => {
    const flow = workflow();
    expect(jobsWithSecrets(flow)).toEqual({
      "preview-remote": ["DIGITALOCEAN_READ_TOKEN", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"],
    });
    const preview = flow.jobs["preview-remote"];
    expect(preview.environment).toBe("preview");
    expect(preview.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    expect(preview.if).toContain("github.event_name == 'pull_request'");
  });

  it("runs only actions pinned by commit", () => {
    const uses = Object.values(workflow().jobs).flatMap((job) => job.steps.map((step) => step.uses as string | undefined).filter(Boolean));
    expect(uses.length).toBeGreaterThan(0);
    expect(uses.filter((action) => !/@[0-9a-f]{40}$/.test(action!))).toEqual([]);
  });
});

describe("the GitOps repository's soak guard", () => {
  const guard = (): Workflow => parse(fs.readFileSync(path.join(ROOT, "gitops/.github/workflows/soak-guard.yml"), "utf8")) as Workflow;
  const steps = () => guard().jobs["soak-guard"].steps;
  const checkout = (dir: string) => steps().find((step) => String(step.uses).startsWith("actions/checkout@") && step.with?.path === dir);

  it("takes its definition from the base branch (pull_request_target), with a read-only token", () => {
    expect(Object.keys(guard().on)).toEqual(["pull_request_target"]);
    expect(guard().permissions).toEqual({ contents: "read", "pull-requests": "read" });
  });

  it("runs on every pull request, so that it can be required, and again when one moves to another base", () => {
    // No paths, paths-ignore or branches filter: a required check that never runs stays pending and blocks the merge.
    expect(guard().on.pull_request_target).toEqual({ types: ["opened", "synchronize", "reopened", "edited"] });
    // Branch protection requires it by this name.
    expect(Object.keys(guard().jobs)).toEqual(["soak-guard"]);
    expect(guard().jobs["soak-guard"]).not.toHaveProperty("name");
  });

  describe("its step, run as GitHub runs it on the two checkouts", () => {
    /**
     * Runs the guard step's script in a workspace holding `guard` (this gitops/, the base's copy)
     * and `pr` (the pull request's commits, checked out detached at its head), with a gh that
     * reports no approvals.
     */
    const runStep = (change: (pr: ReturnType<typeof gitopsRepo>) => void) => {
      const pr = gitopsRepo();
      const base = pr.git("rev-parse", "main");
      pr.git("checkout", "--quiet", "-b", "change");
      change(pr);
      const head = pr.git("rev-parse", "HEAD");
      pr.git("checkout", "--quiet", "--detach", head);
      pr.git("branch", "--quiet", "--delete", "--force", "main", "change");
      const workspace = fs.mkdtempSync(path.join(scratch, "workspace-"));
      fs.symlinkSync(pr.dir, path.join(workspace, "pr"));
      fs.cpSync(path.join(ROOT, "gitops"), path.join(workspace, "guard"), {
        recursive: true,
        filter: (source) => path.basename(source) !== "node_modules",
      });
      // The workflow's `npm ci` in guard/, offline: the project's own install holds the yaml release
      // the guard's package.json pins (asserted below), and a user's clone has no gitops/node_modules.
      fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(workspace, "guard/node_modules"));
      const bin = path.join(workspace, "bin");
      fs.mkdirSync(bin);
      fs.writeFileSync(path.join(bin, "gh"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      const step = steps().find((candidate) => String(candidate.run).includes("promote.mjs --check"))!;
      const env = { ...process.env, ...step.env, BASE: base, HEAD: head, PULL: "7", GITHUB_REPOSITORY: "acme/gitops" };
      env.PATH = `${bin}${path.delimiter}${process.env.PATH}`;
      const result = spawnSync("bash", ["-e", "-c", step.run], { cwd: workspace, env, encoding: "utf8" });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    };

    it("passes at once, saying so, a pull request that leaves production alone", () => {
      const result = runStep((pr) => {
        fs.appendFileSync(path.join(pr.dir, "infrastructure/overlays/remote/controllers/kustomization.yaml"), "# tuned\n");
        pr.commitAt(0, "Tune the infrastructure");
      });
      expect(result.stderr).toBe("");
      expect(result.stdout).toBe(
        "ok: nothing to weigh: this change leaves apps/base/ and apps/overlays/production/ as they are, so what production runs does not change\n",
      );
      expect(result.status).toBe(0);
    });

    it("still weighs, and fails, one that sets a production release that never soaked", () => {
      const result = runStep((pr) => pr.pin("production", "6.16.0", 0));
      expect(result.status).toBe(1);
      expect(result.stdout).not.toContain("nothing to weigh");
      expect(result.stderr).toContain("podinfo ghcr.io/stefanprodan/podinfo:6.16.0 is not what staging runs on main");
    });
  });

  it("needs only the yaml release the project itself installs, so the step above runs on the project's install", () => {
    const dependencies = (file: string) =>
      JSON.parse(fs.readFileSync(path.join(ROOT, file), "utf8")).dependencies as Record<string, string>;
    expect(dependencies("gitops/package.json").yaml).toBe(dependencies("package.json").yaml);
  });

  it("runs the guard and installs its dependencies from the base commit, and only reads the pull request", () => {
    expect(checkout("guard")?.with).toMatchObject({ ref: "${{ github.event.pull_request.base.sha }}", "persist-credentials": false });
    expect(checkout("pr")?.with).toMatchObject({ ref: "${{ github.event.pull_request.head.sha }}", "persist-credentials": false });
    const commands = steps().filter((step) => step.run !== undefined);
    // Nothing from the pull request's tree is executed: no install, script or hook of its own.
    expect(commands.filter((step) => /\bnpm\b/.test(step.run)).map((step) => [step["working-directory"], step.run])).toEqual([
      ["guard", "npm ci --ignore-scripts"],
    ]);
    const runs = commands.map((step) => String(step.run)).join("\n");
    expect(runs).toMatch(/node guard\/scripts\/promote\.mjs --check --repo pr --base "\$BASE" --codeowners guard\/\.github\/CODEOWNERS/);
    expect(runs).not.toMatch(/node pr\/|bash pr\/|\.\/pr\//);
    // Untrusted text (titles, branch names, bodies) never reaches a shell through an expression.
    expect(runs).not.toContain("${{");
  });

  it("lets an override through only with a code owner's approval of the pull request's latest commit", () => {
    const runs = steps()
      .map((step) => String(step.run ?? ""))
      .join("\n");
    expect(runs).toContain('.commit_id == \\"$HEAD\\"');
    expect(runs).toContain('${override:+--override "$override" --approved-by "$approvers"}');
  });

  it("runs only actions pinned by commit", () => {
    const uses = steps()
      .map((step) => step.uses as string | undefined)
      .filter(Boolean);
    expect(uses.filter((action) => !/@[0-9a-f]{40}$/.test(action!))).toEqual([]);
  });
});

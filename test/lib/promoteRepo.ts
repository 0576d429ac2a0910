/**
 * GitOps repositories for the soak guard's tests (gitops/scripts/promote.mjs): real Git histories
 * seeded from gitops/, whose commits are back-dated as a week of soak would have dated them.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll } from "vitest";
import { ROOT } from "./program";

export const SCRIPT = path.join(ROOT, "gitops/scripts/promote.mjs");
export const STAGING = "apps/overlays/staging/kustomization.yaml";
export const PRODUCTION = "apps/overlays/production/kustomization.yaml";
const DAY = 24 * 60 * 60 * 1000;

/** Who commits, given to every git and promote run: the guard refuses to guess an identity. */
export const IDENTITY = {
  GIT_AUTHOR_NAME: "ops",
  GIT_AUTHOR_EMAIL: "ops@acme.invalid",
  GIT_COMMITTER_NAME: "ops",
  GIT_COMMITTER_EMAIL: "ops@acme.invalid",
};

export const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "promote-"));
// Dozens of repositories: on a busy machine their removal outlasts vitest's 10-second hook default.
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }), 60_000);

export interface Repo {
  /** The GitOps folder. */
  readonly dir: string;
  /** The repository's root: `dir`, or its monorepo around it. */
  readonly top: string;
  git(...args: string[]): string;
  /** Sets podinfo's tag in an overlay and commits it as of `daysAgo` days before now. */
  pin(env: "staging" | "production", tag: string, daysAgo: number): string;
  /** Commits whatever the working tree holds as of `daysAgo` days before now. */
  commitAt(daysAgo: number, message: string): string;
  /** podinfo's tag in an overlay, in the working tree or at a commit. */
  tag(env: "staging" | "production", at?: string): string;
}

/**
 * A GitOps repository seeded from gitops/ (with its first commit 30 days old) on main, at the
 * repository's root or, given `under`, in that folder of a larger one.
 */
export function gitopsRepo(under = ""): Repo {
  const top = fs.mkdtempSync(path.join(scratch, "gitops-"));
  const dir = path.join(top, under);
  // Not its node_modules: the guard runs from ROOT/gitops/scripts, and resolves its dependency there.
  fs.cpSync(path.join(ROOT, "gitops"), dir, { recursive: true, filter: (source) => path.basename(source) !== "node_modules" });
  if (under) fs.writeFileSync(path.join(top, "README.md"), "The rest of a monorepo.\n");
  const git = (...args: string[]) => {
    const date = process.env.COMMIT_DATE ?? new Date().toISOString();
    const env = { ...process.env, ...IDENTITY, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date };
    const result = spawnSync("git", ["-C", top, ...args], { encoding: "utf8", env });
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
  const file = (env: string) => (env === "staging" ? STAGING : PRODUCTION);
  return {
    dir,
    top,
    git,
    commitAt,
    pin(env, tag, daysAgo) {
      const at = path.join(dir, file(env));
      fs.writeFileSync(at, fs.readFileSync(at, "utf8").replace(/newTag: "[^"]*"/, `newTag: "${tag}"`));
      return commitAt(daysAgo, `Run podinfo ${tag} in ${env}`);
    },
    tag: (env, at) =>
      /newTag: "?([^"\n]+)"?/.exec(
        at === undefined ? fs.readFileSync(path.join(dir, file(env)), "utf8") : git("show", `${at}:${path.posix.join(under, file(env))}`),
      )![1],
  };
}

export interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the guard on `repo` (`--repo` its GitOps folder), as its user would with an identity. */
export function promote(repo: Repo, ...args: string[]): Run {
  return runScript(SCRIPT, ["--repo", repo.dir, ...args]);
}

export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv = { ...process.env, ...IDENTITY }): Run {
  const result = spawnSync(process.execPath, [script, ...args], { encoding: "utf8", env });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

// What the soak guard asks of Git, and the promotion's commit on a branch of its own.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * Runs git in `dir`. A failure reads as git's own complaint, in one line, rather than Node's
 * "Command failed: git -C …" followed by git's whole output.
 */
export function gitWith(dir, { env, input } = {}, ...args) {
  try {
    return execFileSync("git", ["-C", dir, ...args], {
      encoding: "utf8",
      input,
      env: env === undefined ? process.env : { ...process.env, ...env },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    }).trim();
  } catch (error) {
    const said = String(error.stderr ?? "")
      .split("\n")
      .filter(Boolean);
    throw new Error(`git ${args.join(" ")}: ${said.find((line) => /^(fatal|error):/.test(line)) ?? said[0] ?? error.message}`);
  }
}

export const git = (dir, ...args) => gitWith(dir, {}, ...args);

/**
 * The Git repository around the GitOps folder `dir`. The folder may be a folder of a larger
 * repository (a monorepo): Git names files in commits (`<commit>:<path>`) from the repository's
 * root, so such paths take the folder's `prefix`.
 */
export function openRepository(dir) {
  try {
    return { dir, top: git(dir, "rev-parse", "--show-toplevel"), prefix: git(dir, "rev-parse", "--show-prefix") };
  } catch {
    throw new Error(`${resolve(dir)} is not in a Git repository: run promote in your clone of the GitOps repository`);
  }
}

/** A file of the GitOps folder as `commit` has it; undefined if it has none. */
export function fileAt(repo, commit, file) {
  try {
    return git(repo.dir, "show", `${commit}:${repo.prefix}${file}`);
  } catch {
    return undefined;
  }
}

/** The commit `ref` names, or a refusal that says what to pass instead. */
export function commitOf(repo, ref) {
  try {
    return git(repo.dir, "rev-parse", "--verify", "--end-of-options", `${ref}^{commit}`);
  } catch {
    throw new Error(`there is no branch ${ref} in ${repo.top}: pass --branch <the branch Flux syncs>`);
  }
}

/**
 * Refuses before any work when Git would have to guess who promotes: the commit and its pull
 * request must say who did. Git's guess (user@host) is not an answer, hence useConfigOnly.
 */
export function requireIdentity(repo) {
  try {
    for (const ident of ["GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"]) git(repo.dir, "-c", "user.useConfigOnly=true", "var", ident);
  } catch {
    throw new Error(
      "Git does not know who you are (user.name and user.email), and the promotion's commit must say who promoted: " +
        'git config --global user.name "Your Name" && git config --global user.email you@example.com, then promote again',
    );
  }
}

/** The commit a local branch points at; undefined if there is no such branch. */
export function branchHead(repo, branch) {
  try {
    return git(repo.dir, "log", "-1", "--format=%h %s", `refs/heads/${branch}`, "--");
  } catch {
    return undefined;
  }
}

/** The remote `branch` tracks, where its pull requests go. */
export function remoteOf(repo, branch) {
  try {
    return git(repo.dir, "config", "--get", `branch.${branch}.remote`);
  } catch {
    return "origin";
  }
}

/**
 * The files under `paths` (of the GitOps folder) that the checked-out tree changes since it forked
 * from `base`, against every fork point: after criss-cross merges there are several, and a merge
 * can bring back what one of them had, so "nothing changed" must hold against each. Undefined when
 * the histories share nothing.
 */
export function changedSinceFork(repo, base, paths) {
  let forks;
  try {
    forks = git(repo.dir, "merge-base", "--all", base, "HEAD").split("\n");
  } catch {
    return undefined;
  }
  return [...new Set(forks.flatMap((fork) => git(repo.dir, "diff", "--name-only", "--relative", fork, "--", ...paths).split("\n")))].filter(
    Boolean,
  );
}

/**
 * Commits `text` as the GitOps folder's `file` on a new branch started at `base`, through an index
 * of its own: the user's checkout (its branch, index and files, committed or not) stays as it was.
 * Signs it when the user signs commits (commit-tree does not read commit.gpgSign itself).
 */
export function commitOnNewBranch(repo, { base, branch, file, text, message }) {
  const scratch = mkdtempSync(join(tmpdir(), "promote-"));
  const index = { env: { GIT_INDEX_FILE: join(scratch, "index") } };
  const path = `${repo.prefix}${file}`;
  try {
    const [mode] = git(repo.top, "ls-tree", "--full-tree", base, "--", path).split(" ");
    gitWith(repo.top, index, "read-tree", base);
    const blob = gitWith(repo.top, { input: text }, "hash-object", "-w", "--stdin", `--path=${path}`);
    gitWith(repo.top, index, "update-index", "--cacheinfo", `${mode},${blob},${path}`);
    const tree = gitWith(repo.top, index, "write-tree");
    const sign = gitConfigTrue(repo, "commit.gpgSign") ? ["-S"] : [];
    const commit = gitWith(repo.top, { input: `${message}\n` }, "commit-tree", tree, "-p", base, ...sign);
    // The empty old value makes Git refuse if the branch appeared meanwhile, rather than move it.
    git(repo.top, "update-ref", "-m", "promote", `refs/heads/${branch}`, commit, "");
    return git(repo.top, "log", "-1", "--format=%h %s", commit);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function gitConfigTrue(repo, key) {
  try {
    return git(repo.dir, "config", "--type=bool", "--get", key) === "true";
  } catch {
    return false;
  }
}

/**
 * The README's, the docs/ pages' and gitops/README.md's command blocks, checked offline against what
 * they name: every `pulumi config set` sets a key the program knows (the program's own validation
 * decides), every `npm run` names a script of the project or the GitOps starter, and every file a
 * command installs or runs exists. (They are not executed here: the CLI rung,
 * e2e/apiserver/readme.e2e.ts, runs every `pulumi config` line with the real CLI; the node and SSH
 * rungs run the ones that need a cluster or a host.) Then the shape a newcomer relies on: a README
 * read in one sitting, links that lead somewhere, and a configuration page that matches the program.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfig } from "../components/config";
import { ROOT } from "./lib/program";
import { commands, userDocs, words } from "./lib/readmeCommands";

/** What the program says about a key no stack could set: unknown to it, at any depth it checks. */
function unknownKeyProblems(key: string): string[] {
  const [top, second, third] = key.split(/\.|\[/).map((part) => part.replace(/["\]]/g, ""));
  const nested = (value: unknown) =>
    top === "flux"
      ? { url: "https://git.example.com/gitops.git", [second]: value }
      : top === "environments"
        ? { [second]: { client: "c", billingGroup: "b", [third]: value } }
        : value;
  const raw: Record<string, string> = {
    target: "local",
    kubeContext: "Default",
    environments: JSON.stringify({ dev: { client: "c", billingGroup: "b" } }),
  };
  raw[top] = top === "flux" || top === "environments" ? JSON.stringify(nested(null)) : "x";
  try {
    parseConfig("readme", raw);
    return [];
  } catch (error) {
    return (error as Error).message
      .split("\n")
      .filter((line) => /is not (a setting of this program|a Flux setting|an environment setting)/.test(line));
  }
}

describe.each([...userDocs(), "gitops/README.md"])("%s's command blocks", (file) => {
  const lines = commands(file);
  // A page's commands run either from this project's folder or from the root of the user's GitOps
  // repository (a copy of gitops/), as each block says; gitops/README.md's only from the latter.
  const packageDirs = file === "gitops/README.md" ? [path.join(ROOT, "gitops")] : [ROOT, path.join(ROOT, "gitops")];
  // gitops/README.md runs sops-config from the Pulumi project's folder, as it says.
  const scripts = ["package.json", "gitops/package.json"].flatMap((name) =>
    Object.keys(JSON.parse(fs.readFileSync(path.join(ROOT, name), "utf8")).scripts),
  );

  it("set only config keys the program knows", () => {
    const keys = lines
      .filter((line) => line.startsWith("pulumi config set "))
      .map((line) => {
        const args = words(line).slice(3);
        const positional = args.filter((arg, index) => !arg.startsWith("--") && args[index - 1] !== "--stack");
        return positional[0];
      })
      .filter((key) => !key.includes(":"));
    if (file === "README.md") expect(keys.length).toBeGreaterThan(5);
    expect(keys.flatMap((key) => unknownKeyProblems(key).map((problem) => `${key}: ${problem}`))).toEqual([]);
  });

  it("run only npm scripts the project has", () => {
    const named = lines.flatMap((line) => [...line.matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1]));
    expect(named.filter((script) => !scripts.includes(script))).toEqual([]);
  });

  it("install and run only files the repository has (a secret you are about to encrypt aside)", () => {
    const files = lines.flatMap((line) =>
      words(line).filter(
        (word) => /^(k0s|scripts|gitops|apps|infrastructure|clusters)\/[\w./-]+$/.test(word) && !word.includes("/secrets/"),
      ),
    );
    expect(files.filter((name) => !packageDirs.some((dir) => fs.existsSync(path.join(dir, name))))).toEqual([]);
  });
});

it("a key the program does not know is caught, so the check can fail", () => {
  expect(unknownKeyProblems("fluxx.url")).not.toEqual([]);
  expect(unknownKeyProblems("flux.branchh")).not.toEqual([]);
  expect(unknownKeyProblems("environments.staging.quotaa")).not.toEqual([]);
  expect(unknownKeyProblems("flux.caCertificate")).toEqual([]);
});

/** Every key the program reads, as its own refusal of an unknown key lists them. */
function knownKeys(): string[] {
  const problems = unknownKeyProblems("notAKeyOfThisProgram");
  const listed = /known keys: (.*)$/.exec(problems.join("\n"));
  return listed === null ? [] : listed[1].split(", ");
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchorOf = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");

/** The anchors a Markdown file's headings make, code blocks (whose `#` lines are comments) aside. */
function anchors(file: string): Set<string> {
  const text = fs.readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((match) => anchorOf(match[1])));
}

describe("the README and docs/ as a newcomer reads them", () => {
  // The README is the user's first hour, read top to bottom; references and proofs live in docs/.
  it("keeps the README under 300 lines", () => {
    const lines = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").length;
    expect(lines).toBeLessThan(300);
  });

  it("opens the README with what it is, then the two commands", () => {
    const text = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(text)![1];
    expect(
      firstBlock
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => line.split("#")[0].trim()),
    ).toEqual(["npm ci", "npm test"]);
    expect(text.indexOf("```sh")).toBeLessThan(text.indexOf("\n## "));
  });

  /** A page's links to files (web addresses aside), each resolved to the file it names and its anchor. */
  const fileLinks = (file: string) => {
    const text = fs.readFileSync(path.join(ROOT, file), "utf8").replace(/```[\s\S]*?```/g, "");
    return [...text.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)]
      .map((match) => match[1])
      .filter((link) => !/^[a-z]+:/.test(link))
      .map((link) => {
        const [target, anchor] = link.split("#");
        const resolved = target === "" ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), target);
        return { link, resolved, anchor };
      });
  };

  it.each([...userDocs(), "gitops/README.md"])("%s links only to files and headings that exist", (file) => {
    const links = fileLinks(file);
    if (file === "README.md") expect(links.length).toBeGreaterThan(10);
    const broken = links.filter(({ resolved, anchor }) => {
      if (!fs.existsSync(resolved)) return true;
      return anchor !== undefined && !anchors(resolved).has(anchor);
    });
    expect(broken.map(({ link }) => link)).toEqual([]);
  });

  // gitops/README.md is copied to the root of the user's own repository, where a link out of gitops/
  // (to this project's README or docs/) leads nowhere: it names those pages in words instead.
  it("keeps gitops/README.md's links inside gitops/, which is all a user's copy has", () => {
    const outside = fileLinks("gitops/README.md").filter(({ resolved }) =>
      path.relative(path.join(ROOT, "gitops"), resolved).startsWith(".."),
    );
    expect(outside.map(({ link }) => link)).toEqual([]);
  });

  describe("docs/configuration.md", () => {
    const page = fs.readFileSync(path.join(ROOT, "docs/configuration.md"), "utf8");
    /** The keys the reference table names: each row's first cell, `a` / `b.c` / `d[0]` alike. */
    const documented = [...page.matchAll(/^\| (`[^|]+`) *\|/gm)].flatMap((row) =>
      [...row[1].matchAll(/`([^`]+)`/g)].map((key) => key[1].split(/[.[ ]/)[0]),
    );

    it("lists every key the program reads", () => {
      const known = knownKeys();
      expect(known.length).toBeGreaterThan(30);
      expect(known.filter((key) => !documented.includes(key))).toEqual([]);
    });

    it("lists every key Pulumi.yaml declares", () => {
      const declared = Object.keys(parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config).filter(
        (key) => !key.includes(":"),
      );
      expect(declared.length).toBeGreaterThan(30);
      expect(declared.filter((key) => !documented.includes(key))).toEqual([]);
    });

    it("names no key the program does not know", () => {
      expect(documented.filter((key) => !knownKeys().includes(key))).toEqual([]);
    });
  });
});

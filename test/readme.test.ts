/**
 * The READMEs' command blocks, checked offline against what they name: every `pulumi config set`
 * sets a key the program knows (the program's own validation decides), every `npm run` names a
 * script of the package it runs in, and every file a command installs or runs exists. (They are not
 * executed here: the CLI rung, e2e/apiserver/readme.e2e.ts, runs every `pulumi config` line with the
 * real CLI; the node and SSH rungs run the ones that need a cluster or a host.)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../components/config";
import { ROOT } from "./lib/program";
import { commands, words } from "./lib/readmeCommands";

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

describe.each(["README.md", "gitops/README.md"])("%s's command blocks", (file) => {
  const lines = commands(file);
  const packageDir = file === "README.md" ? ROOT : path.join(ROOT, "gitops");
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
    expect(files.filter((name) => !fs.existsSync(path.join(packageDir, name)))).toEqual([]);
  });
});

it("a key the program does not know is caught, so the check can fail", () => {
  expect(unknownKeyProblems("fluxx.url")).not.toEqual([]);
  expect(unknownKeyProblems("flux.branchh")).not.toEqual([]);
  expect(unknownKeyProblems("environments.staging.quotaa")).not.toEqual([]);
  expect(unknownKeyProblems("flux.caCertificate")).toEqual([]);
});

/** The shell commands of the README's and docs/ pages' ```sh blocks, as the unit and CLI rungs both read them. */
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "./program";

/** Each ```sh block of a Markdown file: its commands, continuation lines joined, comments dropped. */
export function commandBlocks(file: string): string[][] {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((block) =>
    block[1]
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .map((line) => line.replace(/(^|\s)#.*$/, "").trim())
      .filter((line) => line !== ""),
  );
}

/** Every command of a Markdown file's ```sh blocks. */
export const commands = (file: string): string[] => commandBlocks(file).flat();

/** Words of a command as the shell would split them, quotes removed (enough for these READMEs). */
export const words = (command: string): string[] =>
  [...command.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? match[3]);

/**
 * The user's documentation: the README, then every page under docs/ (found, not listed, so a new
 * page is checked the day it is added).
 */
export function userDocs(): string[] {
  const pages = fs
    .readdirSync(path.join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`);
  return ["README.md", ...pages];
}

/**
 * The README's and docs/troubleshooting.md's tables quote messages "as the program prints them": each
 * quoted message's own words must be found in the code that prints it. Values (names, addresses,
 * keys, quoted strings, placeholders and "…") differ from user to user, so a quote is cut at each of
 * them and every run of three or more words left must stand, verbatim, in the program's source.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./lib/program";

const PAGES = ["README.md", "docs/troubleshooting.md"];
const SOURCE_DIRS = ["components", "scripts", "gitops/scripts", "k0s"];
/** Messages of other programs, quoted as theirs: the row names whose they are. */
const OTHERS = /Pulumi's|the command provider's|Flux's|kubeconform's|kustomize's/;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(relative);
    return /\.(ts|mjs|sh)$/.test(entry.name) ? [relative] : [];
  });
}

/** The program's source, string concatenations across lines joined, so a message reads as printed. */
const source = ["index.ts", ...SOURCE_DIRS.flatMap(sourceFiles)]
  .map((file) => fs.readFileSync(path.join(ROOT, file), "utf8"))
  .join("\n")
  .replace(/["'`]\s*\+\s*\n\s*["'`]/g, "");

/** Commands a row names beside its message, which are not messages. */
const COMMAND = /^(flux|kubectl|pulumi|npm|git|sudo|sops) /;

/** The quoted messages of a page's tables: code spans of the first column, other programs' aside. */
export function quotedMessages(markdown: string): string[] {
  return markdown
    .split("\n")
    .filter((line) => line.startsWith("| ") && !/^\| -/.test(line))
    .map((line) => line.split(" | ")[0])
    .filter((cell) => !OTHERS.test(cell))
    .flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]))
    .filter((quote) => !COMMAND.test(quote));
}

/** The runs of three or more words of a quote that are the message's own, values cut out. */
export function ownWords(quote: string): string[] {
  return quote
    .split(/…|[()]|"[^"]*"|<[^>]*>|\S*[.:/[\]@]\S*|\$\S+/)
    .map((part) => part.trim())
    .filter((part) => part.split(/\s+/).length >= 3);
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Whether the source prints these words: each word as written, or a template's `${...}` in its place
 * (the value the quote shows is one user's).
 */
export function printed(words: string, text: string = source): boolean {
  const pattern = words
    .split(/\s+/)
    .map((word) => {
      const [, lead, core, trail] = /^([("'`]*)(.*?)([)"'`,.;:]*)$/.exec(word)!;
      return `(?:${escape(lead)})?(?:${escape(core)}|\\$\\{[^}]*\\})(?:${escape(trail)})?`;
    })
    .join("\\s+");
  return new RegExp(pattern).test(text);
}

describe.each(PAGES)("%s's troubleshooting", (page) => {
  const quotes = quotedMessages(fs.readFileSync(path.join(ROOT, page), "utf8"));

  it("quotes messages, each with words of its own to check", () => {
    expect(quotes.filter((quote) => ownWords(quote).length > 0).length).toBeGreaterThan(4);
  });

  it("quotes only words the program prints", () => {
    const missing = quotes.flatMap((quote) =>
      ownWords(quote)
        .filter((words) => !printed(words))
        .map((words) => `${quote}: "${words}"`),
    );
    expect(missing).toEqual([]);
  });
});

it("finds a quote the program never prints, so the check can fail", () => {
  const invented = quotedMessages("| `k0s-platform:kubeContext is required for every target` | fix it |");
  expect(invented.flatMap(ownWords).filter((words) => !printed(words))).toEqual(["is required for every target"]);
  expect(ownWords('k0s-platform:adminCidrs[0]: "…" has host bits set; use … (that address alone)')).toEqual([
    "has host bits set; use",
    "that address alone",
  ]);
  expect(printed("its dependency yaml is not installed", "`its dependency ${missing} is not installed`")).toBe(true);
  expect(printed("its dependency yaml was not installed", "`its dependency ${missing} is not installed`")).toBe(false);
});

/** The root scripts' command lines: --help prints the usage and succeeds; a mistake prints it and fails. */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./lib/program";

const run = (script: string, ...args: string[]) =>
  spawnSync(process.execPath, [require.resolve("tsx/cli"), path.join(ROOT, "scripts", script), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    // Nothing here may reach a real pulumi CLI or backend.
    env: { ...process.env, PATH: path.dirname(process.execPath) },
  });

describe.each([
  ["age-key.ts", "age-key", "usage: npm run age-key -- export --stack <stack>", ["--stack", "--out-dir", "--owner"]],
  [
    "write-sops-config.ts",
    "sops-config",
    "usage: npm run sops-config -- [--out <file>]",
    ["--out", "--stack", "--recipient", "--break-glass", "--restricted"],
  ],
])("scripts/%s", (script, name, usage, options) => {
  it.each(["--help", "-h"])("prints its usage on %s, naming every option, and exits 0", (flag) => {
    const result = run(script, flag);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.startsWith(usage)).toBe(true);
    for (const option of [...options, "--help"]) expect(result.stdout).toMatch(new RegExp(`^  (-h, )?${option}\\b`, "m"));
    expect(result.stderr).toBe("");
  });

  it("refuses an unknown option, pointing at --help, and exits 1", () => {
    const result = run(script, "--no-such-option");
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`${name}: Unknown option '--no-such-option' (--help lists the options)\n`);
    expect(result.stdout).toBe("");
  });
});

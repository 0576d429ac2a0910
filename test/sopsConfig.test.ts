import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderSopsConfig } from "../components/lib/sopsConfig";
import { ROOT } from "./lib/program";

const LOCAL = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

describe("renderSopsConfig", () => {
  it("encrypts Secret data to both clusters' recipients", async () => {
    const age = await import("age-encryption");
    const remote = await age.identityToRecipient(await age.generateX25519Identity());
    const config = parse(renderSopsConfig([LOCAL, remote, LOCAL]));
    expect(config).toEqual({
      creation_rules: [{ path_regex: "\\.ya?ml$", encrypted_regex: "^(data|stringData)$", age: `${LOCAL},${remote}` }],
    });
  });

  it.each([[[]], [["age1notarecipient"]], [["AGE-SECRET-KEY-1QQQQ"]]])("refuses %j", (recipients) => {
    expect(() => renderSopsConfig(recipients)).toThrow();
  });
});

describe("npm run sops-config", () => {
  const script = path.join(ROOT, "scripts/write-sops-config.ts");
  const tsx = path.join(ROOT, "node_modules/.bin/tsx");
  // A machine without the Pulumi CLI: nothing named pulumi on PATH.
  const withoutPulumi = { ...process.env, PATH: path.dirname(process.execPath) };
  const run = (...args: string[]) => spawnSync(tsx, [script, ...args], { encoding: "utf8", env: withoutPulumi });

  it("writes recipients passed by hand without asking any stack, so it needs no Pulumi CLI", () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sops-config-")), ".sops.yaml");
    const result = run("--out", out, "--recipient", LOCAL);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(parse(fs.readFileSync(out, "utf8")).creation_rules[0].age).toBe(LOCAL);
  });

  it("says what to do, without a stack trace, when a stack it must ask cannot answer", () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sops-config-")), ".sops.yaml");
    const result = run("--out", out, "--stack", "remote");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('sops-config: cannot read the age recipient of stack "remote": the pulumi CLI is not installed.');
    expect(result.stderr).toContain("or pass its recipient with --recipient age1");
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(out)).toBe(false);
  });
});

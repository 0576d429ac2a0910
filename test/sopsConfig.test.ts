import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderSopsConfig } from "../components/lib/sopsConfig";
import { ROOT } from "./lib/program";

type Rule = { path_regex: string; encrypted_regex: string; age: string };

let keys: Record<string, string>;
beforeAll(async () => {
  const age = await import("age-encryption");
  const names = ["workstation", "remote", "dev", "localStaging", "remoteStaging", "production", "operator", "breakGlass"];
  keys = Object.fromEntries(
    await Promise.all(names.map(async (name) => [name, await age.identityToRecipient(await age.generateX25519Identity())])),
  );
});

const recipients = () => ({
  clusters: [keys.workstation, keys.remote],
  environments: { dev: [keys.dev], staging: [keys.localStaging, keys.remoteStaging], production: [keys.production] },
  operators: [keys.operator],
  breakGlass: [keys.breakGlass],
});

/** The rule sops picks for a file: the first whose path_regex matches (sops's own order). */
const ruleFor = (rules: Rule[], file: string) => rules.find((rule) => new RegExp(rule.path_regex).test(file));
const keysFor = (rules: Rule[], file: string) => ruleFor(rules, file)?.age.split(",").sort();

describe("renderSopsConfig", () => {
  it("encrypts each environment's secrets to its keys alone: production to the remote cluster and break-glass, never a workstation", () => {
    const rules = parse(renderSopsConfig(recipients())).creation_rules as Rule[];
    expect(keysFor(rules, "apps/overlays/production/secrets/db.yaml")).toEqual([keys.production, keys.breakGlass].sort());
    expect(keysFor(rules, "apps/overlays/staging/secrets/db.yaml")).toEqual(
      [keys.localStaging, keys.remoteStaging, keys.operator, keys.breakGlass].sort(),
    );
    expect(keysFor(rules, "apps/overlays/dev/secrets/db.yml")).toEqual([keys.dev, keys.operator, keys.breakGlass].sort());
    expect(keysFor(rules, "infrastructure/overlays/remote/configs/dns-token.yaml")).toEqual(
      [keys.workstation, keys.remote, keys.operator, keys.breakGlass].sort(),
    );
    // sops hands the rule an absolute path when the file is outside the folder it runs in.
    expect(keysFor(rules, "/home/me/gitops/apps/overlays/production/secrets/db.yaml")).toEqual([keys.production, keys.breakGlass].sort());
    for (const rule of rules) expect(rule.encrypted_regex).toBe("^(data|stringData)$");
  });

  it("matches no rule for a file outside a secrets folder or in a look-alike path, so sops refuses to encrypt it", () => {
    const rules = parse(renderSopsConfig(recipients())).creation_rules as Rule[];
    for (const file of [
      "apps/overlays/staging/db.yaml",
      "apps/overlays/staging/secrets/nested/db.yaml",
      "apps/overlays/production-copy/secrets/db.yaml",
      "apps/overlays/staging/secrets/db.json",
    ]) {
      expect(ruleFor(rules, file), file).toBeUndefined();
    }
  });

  it("names what has no key rather than writing a rule nobody can decrypt", () => {
    expect(() => renderSopsConfig({ ...recipients(), environments: { production: [] } })).toThrow(
      /no cluster's age recipient for the production environment/,
    );
  });

  it.each([["age1notarecipient"], ["AGE-SECRET-KEY-1QQQQ"]])("refuses %j as a recipient", (recipient) => {
    expect(() => renderSopsConfig({ ...recipients(), operators: [recipient] })).toThrow(/is not an age X25519 recipient/);
  });
});

describe("npm run sops-config", () => {
  const script = path.join(ROOT, "scripts/write-sops-config.ts");
  const tsx = path.join(ROOT, "node_modules/.bin/tsx");

  /** A `pulumi` on PATH that answers `stack output` as the given stacks would. */
  function fakePulumi(outputs: Record<string, Record<string, unknown>>): NodeJS.ProcessEnv {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "fake-pulumi-"));
    fs.writeFileSync(path.join(bin, "outputs.json"), JSON.stringify(outputs));
    fs.writeFileSync(
      path.join(bin, "pulumi"),
      `#!${process.execPath}\nconst args = process.argv.slice(2); const stack = args[args.indexOf("--stack") + 1];\n` +
        `const outputs = require(${JSON.stringify(path.join(bin, "outputs.json"))})[stack];\n` +
        `if (!outputs) { console.error("error: no stack named '" + stack + "' found"); process.exit(255); }\n` +
        `console.log(JSON.stringify(outputs[args[2]]));\n`,
      { mode: 0o755 },
    );
    return { ...process.env, PATH: `${bin}:${path.dirname(process.execPath)}` };
  }
  const run = (env: NodeJS.ProcessEnv, ...args: string[]) => spawnSync(tsx, [script, ...args], { encoding: "utf8", env });
  const out = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sops-config-")), ".sops.yaml");

  it("asks dev, local-staging and remote, writes a rule per environment, and says which keys each got", () => {
    const env = fakePulumi({
      dev: { ageRecipient: keys.workstation, ageRecipients: { dev: keys.dev } },
      "local-staging": { ageRecipient: keys.workstation, ageRecipients: { staging: keys.localStaging } },
      remote: { ageRecipient: keys.remote, ageRecipients: { staging: keys.remoteStaging, production: keys.production } },
    });
    const file = out();
    const result = run(env, "--out", file, "--recipient", keys.operator, "--break-glass", keys.breakGlass);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    // Every rule, and each key it got with where that key came from.
    expect(result.stdout).toContain(
      `  apps/overlays/production/secrets/[^/]+.yaml\n    ${keys.production}  remote's production\n    ${keys.breakGlass}  break-glass\n`,
    );
    expect(result.stdout).toContain(`    ${keys.workstation}  dev's cluster, local-staging's cluster\n`);
    expect(result.stdout).toContain(`  apps/overlays/staging/secrets/[^/]+.yaml\n    ${keys.localStaging}  local-staging's staging\n`);
    const rules = parse(fs.readFileSync(file, "utf8")).creation_rules as Rule[];
    expect(keysFor(rules, "apps/overlays/staging/secrets/db.yaml")).toEqual(
      [keys.localStaging, keys.remoteStaging, keys.operator, keys.breakGlass].sort(),
    );
    expect(keysFor(rules, "apps/overlays/production/secrets/db.yaml")).toEqual([keys.production, keys.breakGlass].sort());
  });

  it("keeps operators' keys out of whichever environments --restricted names", () => {
    const env = fakePulumi({ remote: { ageRecipient: keys.remote, ageRecipients: { soak: keys.remoteStaging, live: keys.production } } });
    const file = out();
    const result = run(env, "--out", file, "--stack", "remote", "--recipient", keys.operator, "--restricted", "live");
    expect(result.status).toBe(0);
    const rules = parse(fs.readFileSync(file, "utf8")).creation_rules as Rule[];
    expect(keysFor(rules, "apps/overlays/live/secrets/db.yaml")).toEqual([keys.production]);
    expect(keysFor(rules, "apps/overlays/soak/secrets/db.yaml")).toEqual([keys.remoteStaging, keys.operator].sort());
  });

  it("says what to do, without a stack trace, when a stack it must ask cannot answer, and writes nothing", () => {
    const file = out();
    const result = run(fakePulumi({}), "--out", file, "--stack", "remote");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`sops-config: cannot read the age recipients of stack "remote": error: no stack named 'remote' found.`);
    expect(result.stderr).toContain("Bring the stack up first (pulumi up --stack remote)");
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(file)).toBe(false);
  });

  it("says so when the Pulumi CLI is not installed", () => {
    const result = run({ ...process.env, PATH: path.dirname(process.execPath) }, "--out", out(), "--stack", "dev");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('cannot read the age recipients of stack "dev": the pulumi CLI is not installed.');
  });
});

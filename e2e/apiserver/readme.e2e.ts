/**
 * The `pulumi config` and `pulumi stack` lines of the README and of every docs/ page, run as written
 * with the real CLI through bash, one command block at a time on the project's shipped stacks: the CLI must accept each line
 * (quoting, --path, values from stdin, `$(...)`), what it stores must pass the program's own
 * validation for every key the block sets, and every value set with --secret must be stored
 * encrypted. The lines that need a cluster or a droplet (`pulumi up`, `kubectl`) are the node and
 * SSH rungs'; a block's `&& pulumi up` is cut off here.
 *
 * Offline stand-ins, each a test double for what a user's machine has: `<...>` placeholders get
 * sample values, ~/.ssh/id_ed25519 is a key made for the test, and the README's "what is my
 * address" lookup (IPv4 only, `-4`, so a dual-stack machine does not answer with its IPv6 address)
 * is a stand-in script on PATH that answers 203.0.113.7 without any traffic.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig, SECRET_KEYS } from "../../components/config";
import { generateIdentity } from "../../components/sopsAgeKey";
import { commandBlocks, userDocs, words } from "../../test/lib/readmeCommands";
import { SEED_STACKS_DIR } from "../../test/lib/seedStacks";
import { pulumiCli, type PulumiCli } from "../harness/pulumiCli";

const PROJECT = "k0s-platform";
/** The stack the CLI has selected before a block runs: a block that names no stack writes here, and fails. */
const UNNAMED = "no-stack-named";
const PLACEHOLDERS: Readonly<Record<string, string>> = {
  "<you>": "acme",
  "<gitops-repo>": "gitops",
  "<read-only token>": "github_pat_readme_only",
  "<read-only token of that repository>": "glpat-readme-only",
  "<token>": "dop_v1_readme_only",
  "<sha256 of k0s-v1.36.3+k0s.2-amd64 or -arm64, as the server runs>": "a".repeat(64),
  "<safe folder>": "safe",
  "<Spaces access key id>": "DO00READMEONLY",
  "<Spaces secret key>": "spaces_readme_only",
  "<the server's host key line>": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPWbQ2mMtVr3fT0Gk6pWv0cZJ0f9c1y7pS2b7oZ2q8xK",
};

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "readme-cli-"));
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

/** The lines of a block this rung runs: `pulumi config` and `pulumi stack select/init`, up to any `&&`. */
function configLines(block: readonly string[]): string[] {
  return block.map((line) => line.split(" && ")[0]).filter((line) => /^pulumi (config (set|rm)|stack (select|init)) /.test(line));
}

/** A project copy with the shipped stacks, the user's home (an SSH key, a stand-in curl) and files the README reads. */
async function userMachine(name: string): Promise<{ cli: PulumiCli; env: NodeJS.ProcessEnv }> {
  const dir = path.join(workDir, name);
  const cli = pulumiCli(dir);
  const sshDir = path.join(cli.env.HOME!, ".ssh");
  fs.mkdirSync(sshDir, { recursive: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ops@acme", "-f", path.join(sshDir, "id_ed25519")]);
  // The key files the README reads: imports, and what `npm run age-key -- export` leaves in a safe place.
  fs.mkdirSync(path.join(cli.projectDir, "safe"));
  for (const file of ["cluster-key.txt", "dev-key.txt", "safe/dev-cluster.agekey", "safe/dev-dev.agekey"])
    fs.writeFileSync(path.join(cli.projectDir, file), `${await generateIdentity()}\n`);
  const stubs = path.join(dir, "stubs");
  fs.mkdirSync(stubs);
  fs.writeFileSync(
    path.join(stubs, "curl"),
    '#!/bin/sh\ncase "$*" in "-4 -s https://ifconfig.me" | "-s -4 https://ifconfig.me") printf 203.0.113.7; exit 0 ;; esac\necho "curl stand-in: not $*" >&2; exit 1\n',
    { mode: 0o755 },
  );
  for (const file of fs.readdirSync(SEED_STACKS_DIR)) cli.pulumi("stack", "init", file.replace(/^Pulumi\.|\.yaml$/g, ""));
  cli.pulumi("stack", "init", UNNAMED);
  return { cli, env: { ...cli.env, PATH: `${stubs}:${cli.env.PATH}` } };
}

/** The stack's config as the program receives it (keys without the project prefix), and which keys are secret. */
function storedConfig(cli: PulumiCli, stack: string): { raw: Record<string, string>; secret: Set<string> } {
  const stored = JSON.parse(cli.pulumi("config", "--json", "--show-secrets", "--stack", stack)) as Record<
    string,
    { value?: string; objectValue?: unknown; secret: boolean }
  >;
  const raw: Record<string, string> = {};
  const secret = new Set<string>();
  for (const [key, entry] of Object.entries(stored)) {
    if (entry.secret) secret.add(key);
    if (key.startsWith(`${PROJECT}:`) && entry.value !== undefined) raw[key.slice(PROJECT.length + 1)] = entry.value;
  }
  return { raw, secret };
}

/** The program's validation messages about `keys` (top-level keys), and none about keys the block left alone. */
function problemsWith(stack: string, raw: Record<string, string>, keys: readonly string[]): string[] {
  try {
    parseConfig(stack, raw);
    return [];
  } catch (error) {
    return (error as Error).message
      .split("\n")
      .filter((line) => keys.some((key) => line.includes(`${PROJECT}:${key}`) || line.includes(`${PROJECT}:${key}.`)));
  }
}

const blocks = userDocs()
  .flatMap((file) =>
    commandBlocks(file).map((block, index) => ({ name: `${file.replace(/\W+/g, "-")}-${index}`, lines: configLines(block) })),
  )
  .filter((block) => block.lines.length > 0);

describe("the README's and docs/ pages' config commands, with the real CLI", () => {
  it("has blocks to run, so the check below can fail", () => {
    expect(blocks.length).toBeGreaterThan(5);
  });

  it.each(blocks.map((block) => [block.lines[0], block] as const))(
    "runs the block starting %s as written, and the program accepts what it stores",
    async (_first, block) => {
      const { cli, env } = await userMachine(block.name);
      cli.pulumi("stack", "select", UNNAMED);
      const touched = new Map<string, { keys: Set<string>; secrets: Set<string> }>();
      const current = () => cli.pulumi("stack", "--show-name").trim();
      for (const written of block.lines) {
        const unknown = [...written.matchAll(/<[^>\s][^>]*>/g)].map((match) => match[0]).filter((text) => !(text in PLACEHOLDERS));
        expect(unknown, `a placeholder with no sample value in: ${written}`).toEqual([]);
        const line = Object.entries(PLACEHOLDERS).reduce((text, [placeholder, value]) => text.replaceAll(placeholder, value), written);
        const result = spawnSync("bash", ["-c", line], { cwd: cli.projectDir, env, encoding: "utf8" });
        expect(result.status, `${written}\n${result.stdout}${result.stderr}`).toBe(0);
        const args = words(written);
        if (args[1] !== "config") continue;
        const stackFlag = args.indexOf("--stack");
        const stack = stackFlag >= 0 ? args[stackFlag + 1] : current();
        expect(stack, `sets config on whichever stack is selected: ${written}`).not.toBe(UNNAMED);
        const key = args.slice(3).filter((arg, index, rest) => !arg.startsWith("--") && rest[index - 1] !== "--stack")[0];
        const entry = touched.get(stack) ?? { keys: new Set<string>(), secrets: new Set<string>() };
        entry.keys.add(key.split(/[.[]/)[0]);
        if (args.includes("--secret")) entry.secrets.add(key.includes(":") ? key.split(/[.[]/)[0] : `${PROJECT}:${key.split(/[.[]/)[0]}`);
        touched.set(stack, entry);
      }
      for (const [stack, { keys, secrets }] of touched) {
        const { raw, secret } = storedConfig(cli, stack);
        const ownKeys = [...keys].filter((key) => !key.includes(":"));
        expect(problemsWith(stack, raw, ownKeys), `${stack} after the block`).toEqual([]);
        expect(
          [...secrets].filter((key) => !secret.has(key)),
          `${stack}: set with --secret but stored in the clear`,
        ).toEqual([]);
        const clear = ownKeys.filter((key) => key in SECRET_KEYS && (raw[key] ?? "") !== "" && !secret.has(`${PROJECT}:${key}`));
        expect(clear, `${stack}: the README stores a secret key in the clear, which the program refuses`).toEqual([]);
        const stackFile = fs.readFileSync(path.join(cli.projectDir, `Pulumi.${stack}.yaml`), "utf8");
        for (const value of Object.values(PLACEHOLDERS).filter(
          (sample) => sample.includes("readme_only") || sample.includes("readme-only"),
        )) {
          expect(stackFile.includes(value), `${stack}'s stack file holds a token in the clear`).toBe(false);
        }
      }
    },
    120_000,
  );
});

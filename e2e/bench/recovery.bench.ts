/**
 * The recovery drill, timed on the node rung's test cluster of k0s's components (not k0s): the
 * workstation's cluster is lost with everything on it, while the stacks' state survives (as a
 * backend does) and so does the GitOps repository (as GitHub does: here its content, a SOPS file
 * encrypted to dev's key included, is pushed again to the fresh node's Git server). As the README's
 * drill has it, the operator exports the age identities from the state (`npm run age-key`), starts
 * a fresh node, imports them (`ageIdentities`), and runs `pulumi refresh` and `pulumi up` on each
 * stack: Flux restores every workload, and the SOPS file decrypts with the same key.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, it } from "vitest";
import { stringify } from "yaml";
import { run, waitFor } from "../harness/processes";
import { ROOT } from "../harness/pulumiCli";
import { TOOLCHAIN_BIN } from "../harness/toolchain";
import { addResource } from "../node/gitopsRepo";
import { startWorkstation, type Workstation } from "../node/workstation";
import { report } from "./report";

const STACKS = ["dev", "local-staging"] as const;

let running: Workstation | undefined;
const saved = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-recovery-"));

afterAll(async () => {
  await running?.stop();
  fs.rmSync(saved, { recursive: true, force: true });
});

async function bringUp(workstation: Workstation): Promise<void> {
  for (const stack of STACKS) workstation.bringUp(stack);
  await workstation.fluxSynced(1_000);
}

/** Commits the encrypted file into the repository's dev secrets, as it was before the loss. */
function commitSecret(workstation: Workstation, encrypted: string): string {
  return workstation.repo.commit("Add the dev database credentials, encrypted", (dir) =>
    addResource(path.join(dir, "apps/overlays/dev/secrets"), "db-credentials.yaml", encrypted),
  );
}

async function decryptedPassword(workstation: Workstation): Promise<string | undefined> {
  const response = await workstation.node.client.request("GET", "/api/v1/namespaces/dev/secrets/db-credentials");
  return response.status === 200 ? Buffer.from(response.body.data.password, "base64").toString("utf8") : undefined;
}

it("recovers a lost workstation cluster from the stacks' state and Git: the same age keys, every workload, every SOPS file", async () => {
  // Before: the platform up, a secret encrypted to dev's key committed and decrypted.
  const lost = await startWorkstation();
  running = lost;
  await bringUp(lost);
  const devRecipient = JSON.parse(lost.cli.pulumi("stack", "output", "ageRecipients", "--json", "--stack", "dev")).dev as string;
  const password = randomBytes(12).toString("hex");
  const plain = path.join(saved, "db-credentials.yaml");
  fs.writeFileSync(plain, stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "db-credentials" }, stringData: { password } }));
  // Encrypted to dev's key alone, as .sops.yaml's rule for dev's folder does (no rules needed here).
  const noRules = path.join(saved, "no-rules.sops.yaml");
  fs.writeFileSync(noRules, "{}\n");
  const encrypted = run(path.join(TOOLCHAIN_BIN, "sops"), [
    ...["--config", noRules, "--encrypt", "--age", devRecipient, "--encrypted-regex", "^(data|stringData)$", plain],
  ]);
  fs.rmSync(plain);
  commitSecret(lost, encrypted);
  await lost.fluxSynced(1_000);
  await waitFor(
    "dev's credentials decrypted",
    async () => ((await decryptedPassword(lost)) === password ? true : undefined),
    300_000,
    1_000,
  );

  // What survives the loss: the state and the stack files (the backend and the project).
  const survived = path.join(saved, "pulumi");
  fs.cpSync(lost.cli.stateDir, path.join(survived, "state"), { recursive: true });
  for (const stack of STACKS)
    fs.copyFileSync(path.join(lost.cli.projectDir, `Pulumi.${stack}.yaml`), path.join(survived, `Pulumi.${stack}.yaml`));
  await lost.stop();
  running = undefined;

  // The drill, timed from a fresh node's start.
  const started = Date.now();
  const fresh = await startWorkstation();
  running = fresh;
  const { cli } = fresh;
  fs.rmSync(cli.stateDir, { recursive: true, force: true });
  fs.cpSync(path.join(survived, "state"), cli.stateDir, { recursive: true });
  for (const stack of STACKS)
    fs.copyFileSync(path.join(survived, `Pulumi.${stack}.yaml`), path.join(cli.projectDir, `Pulumi.${stack}.yaml`));
  commitSecret(fresh, encrypted);
  // 1. The keys, from the state, to a safe place; 2. imported into the stacks.
  const safe = path.join(saved, "safe-place");
  for (const stack of STACKS) {
    run(
      path.join(ROOT, "node_modules", ".bin", "tsx"),
      [path.join(ROOT, "scripts", "age-key.ts"), "export", "--stack", stack, "--out-dir", safe],
      { cwd: cli.projectDir, env: { ...process.env, ...cli.env } },
    );
  }
  const imports: [string, string, string][] = [
    ["dev", "cluster", "dev-cluster.agekey"],
    ["dev", "dev", "dev-dev.agekey"],
    ["local-staging", "staging", "local-staging-staging.agekey"],
  ];
  for (const [stack, owner, file] of imports) {
    fresh.configure(stack, {}, { [`ageIdentities.${owner}`]: fs.readFileSync(path.join(safe, file), "utf8") });
  }
  // 3. The state forgets the lost cluster's objects; `up` makes them again, the keys as imported.
  for (const stack of STACKS) {
    fresh.prepare(stack);
    cli.pulumi("refresh", "--stack", stack, "--yes");
    cli.pulumi("up", "--stack", stack, "--yes", "--skip-preview");
  }
  const upDone = (Date.now() - started) / 1000;
  await fresh.fluxSynced(1_000);
  const synced = (Date.now() - started) / 1000;
  await waitFor(
    "dev's credentials decrypted again",
    async () => ((await decryptedPassword(fresh)) === password ? true : undefined),
    300_000,
    1_000,
  );
  const recovered = (Date.now() - started) / 1000;
  expect(JSON.parse(cli.pulumi("stack", "output", "ageRecipients", "--json", "--stack", "dev")).dev).toBe(devRecipient);

  report(
    "Recovery drill: a lost workstation cluster, rebuilt from the stacks' state and Git (seconds from the fresh node's start)",
    [
      "fresh node, keys exported and imported, refresh and up of both stacks",
      "every Kustomization Ready",
      "the SOPS secret decrypted (recovered)",
    ],
    [[upDone, synced, recovered]],
  );
}, 2_400_000);

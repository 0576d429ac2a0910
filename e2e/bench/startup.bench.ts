/**
 * The program's start-up as Pulumi's Node.js runtime performs it: time from process start to the
 * first resource registration, with ts-node type-checking and transpile-only.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { it } from "vitest";
import { report } from "./report";

const PROBE = path.join(__dirname, "startupProbe.cjs");
const RUNS = 3;

/** ts-node caches compiled files between runs; a fresh cache directory measures a cold start. */
function firstRegistrationMs(mode: "typecheck" | "transpile-only", cacheDirectory: string): number {
  // The probe exits at the first registration, so Pulumi's leak check exits non-zero: read stdout.
  const { stdout, stderr } = spawnSync(process.execPath, [PROBE, mode], {
    encoding: "utf8",
    env: { ...process.env, TS_NODE_CACHE_DIRECTORY: cacheDirectory },
  });
  const first = stdout.split("\n")[0];
  if (!first.startsWith("{")) throw new Error(`start-up probe (${mode}) failed:\n${stderr}`);
  return (JSON.parse(first) as { firstRegistrationMs: number }).firstRegistrationMs;
}

it("measures start-up with and without type-checking", () => {
  const rows = (["typecheck", "transpile-only"] as const).map((mode) => {
    const warmCache = fs.mkdtempSync(path.join(os.tmpdir(), "ts-node-warm-"));
    const cold = Array.from({ length: RUNS }, () => firstRegistrationMs(mode, fs.mkdtempSync(path.join(os.tmpdir(), "ts-node-cold-"))));
    firstRegistrationMs(mode, warmCache);
    const warm = Array.from({ length: RUNS }, () => firstRegistrationMs(mode, warmCache));
    const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)] / 1000;
    return [mode, median(cold), median(warm)];
  });
  report(`Start-up to first registration (median of ${RUNS})`, ["ts-node mode", "cold cache s", "warm cache s"], rows);
}, 300_000);

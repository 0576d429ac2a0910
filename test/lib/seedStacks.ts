/**
 * The stack files as the project ships them, kept as the tests' own copies in test/fixtures/stacks:
 * the checkout's `Pulumi.<stack>.yaml` files are the user's to `pulumi config set`, so no test reads
 * them as fixtures.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export const SEED_STACKS_DIR = path.resolve(__dirname, "../fixtures/stacks");

/** The seed config of one of the three stacks the project ships, as `key -> value` without the project prefix. */
export function seedStackConfig(stack: string): Record<string, unknown> {
  const file = parse(fs.readFileSync(path.join(SEED_STACKS_DIR, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(file.config).map(([key, value]) => [key.replace(/^k0s-platform:/, ""), value]));
}

import * as path from "node:path";
import type { Reporter, TestModule } from "vitest/node";
import { defineConfig } from "vitest/config";

/**
 * After the summary, one line per reason tests were skipped with (`context.skip(note)`), naming their
 * files: a clone with nothing beside it passes `npm test`, and says what it did not run and why.
 */
const skipReasons: Reporter = {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    const skipped = new Map<string, { count: number; files: Set<string> }>();
    for (const module of testModules) {
      for (const test of module.children.allTests("skipped")) {
        const result = test.result();
        const note = result.state === "skipped" ? result.note : undefined;
        if (note === undefined) continue;
        const entry = skipped.get(note) ?? { count: 0, files: new Set<string>() };
        entry.count += 1;
        entry.files.add(path.relative(process.cwd(), module.moduleId));
        skipped.set(note, entry);
      }
    }
    for (const [note, { count, files }] of skipped) console.log(`Skipped ${count} tests (${[...files].join(", ")}): ${note}.`);
  },
};

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", skipReasons],
    // Each file runs a whole Pulumi program under mocks; Pulumi's runtime state is per-process.
    pool: "forks",
    // The program refuses to run with an SSH agent in reach unless sshUseAgent asks for one; a
    // developer's own agent must not decide the tests (those about the agent set it themselves).
    env: { SSH_AUTH_SOCK: "" },
    testTimeout: 30_000,
  },
});

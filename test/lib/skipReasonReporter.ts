/**
 * A line after vitest's summary saying which tests were skipped and why, so that a user's clone
 * (nothing beside it) passes `npm test` without a reader wondering what did not run.
 */
import * as path from "node:path";
import type { Reporter, TestModule } from "vitest/node";
import { upstreamDataSkipReason } from "./k0sSchema";

export class SkipReasonReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const reason = upstreamDataSkipReason();
    if (reason === undefined) return;
    const skipped = testModules
      .map((module) => ({ file: path.relative(process.cwd(), module.moduleId), count: [...module.children.allTests("skipped")].length }))
      .filter(({ count }) => count > 0);
    if (skipped.length === 0) return;
    const total = skipped.reduce((sum, { count }) => sum + count, 0);
    console.log(`Skipped ${total} tests (${skipped.map(({ file }) => file).join(", ")}): ${reason}.`);
  }
}

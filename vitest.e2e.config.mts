import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    // One shared cluster and engine; steps depend on each other and run in file order.
    fileParallelism: false,
    sequence: { concurrent: false },
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});

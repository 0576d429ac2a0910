import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each file runs a whole Pulumi program under mocks; Pulumi's runtime state is per-process.
    pool: "forks",
    testTimeout: 30_000,
  },
});

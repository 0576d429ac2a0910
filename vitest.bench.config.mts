import { defineConfig } from "vitest/config";

// `npm run bench`: figures for the README, not a timed test.
export default defineConfig({
  test: {
    include: ["e2e/bench/*.bench.ts"],
    fileParallelism: false,
    pool: "forks",
    hookTimeout: 300_000,
  },
});

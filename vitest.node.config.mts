import { defineConfig } from "vitest/config";

// `npm run test:node`: the node rung, on a test cluster of k0s's components (not k0s; see
// e2e/node/node.ts). One node and one story; steps depend on each other
// and run in file order.
export default defineConfig({
  test: {
    include: ["e2e/node/**/*.node.ts"],
    fileParallelism: false,
    sequence: { concurrent: false },
    pool: "forks",
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});

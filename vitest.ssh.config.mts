import { defineConfig } from "vitest/config";

// `npm run test:ssh`: the SSH-host rung. One rehearsal droplet and one story; steps depend on each
// other and run in file order.
export default defineConfig({
  test: {
    include: ["e2e/ssh/**/*.ssh.ts"],
    fileParallelism: false,
    sequence: { concurrent: false },
    pool: "forks",
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});

import { defineConfig } from "vitest/config";

// `npm run test:ssh`: the SSH-host rung. One rehearsal droplet and one story; steps depend on each
// other and run in file order.
export default defineConfig({
  test: {
    include: ["e2e/ssh/**/*.ssh.ts"],
    fileParallelism: false,
    sequence: { concurrent: false },
    pool: "forks",
    // The program refuses to run with an SSH agent in reach unless sshUseAgent asks for one; a
    // developer's own agent must not decide the tests (those about the agent set it themselves).
    env: { SSH_AUTH_SOCK: "" },
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});

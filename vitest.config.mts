import { defineConfig } from "vitest/config";
import { SkipReasonReporter } from "./test/lib/skipReasonReporter";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", new SkipReasonReporter()],
    // Each file runs a whole Pulumi program under mocks; Pulumi's runtime state is per-process.
    pool: "forks",
    // The program refuses to run with an SSH agent in reach unless sshUseAgent asks for one; a
    // developer's own agent must not decide the tests (those about the agent set it themselves).
    env: { SSH_AUTH_SOCK: "" },
    testTimeout: 30_000,
  },
});

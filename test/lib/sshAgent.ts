import { afterAll, beforeAll } from "vitest";

/**
 * Runs the enclosing describe block with no SSH agent in reach: the program refuses one unless
 * sshUseAgent is true, and a developer's shell must not decide the tests.
 */
export function withoutSshAgent(): void {
  const agentSocket = process.env.SSH_AUTH_SOCK;
  beforeAll(() => {
    delete process.env.SSH_AUTH_SOCK;
  });
  afterAll(() => {
    if (agentSocket !== undefined) process.env.SSH_AUTH_SOCK = agentSocket;
  });
}

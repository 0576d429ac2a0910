/**
 * A rung told as a story: steps in order, sharing one cluster. Once a step fails, the later ones
 * (which build on it) are skipped, and `failed` tells afterAll to print the diagnostics.
 */
import { it } from "vitest";

export interface Story {
  readonly failed: boolean;
  step(this: void, name: string, body: () => Promise<void> | void, timeout?: number): void;
}

export function story(): Story {
  let failed = false;
  return {
    get failed() {
      return failed;
    },
    step(name, body, timeout) {
      it(
        name,
        async (context) => {
          if (failed) context.skip();
          try {
            await body();
          } catch (error) {
            failed = true;
            throw error;
          }
        },
        timeout,
      );
    },
  };
}

/**
 * Runs the real program (index.ts) under mocks with a stack's config, and waits until the
 * whole resource graph has been registered.
 */
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { vi } from "vitest";
import { installMocks, MockCloud, Registration, registeredUrns } from "../mocks";

export const ROOT = path.resolve(__dirname, "../..");
export const FLUX_FIXTURE = path.join(ROOT, "test/fixtures/flux-install.yaml");

/** The GitOps repository a user points Flux at, as the README has them set it. */
export const USER_REPOSITORY = "https://github.com/acme/k0s-platform-gitops";

/**
 * Stack config as a user completes it for Flux (the README's `flux.url`, where the stack does not
 * set one), with Flux installed from the test fixture instead of the release download.
 */
export function withFluxFixture(config: Record<string, unknown>): Record<string, unknown> {
  return { ...config, flux: { url: USER_REPOSITORY, ...(config.flux as object), manifestPath: FLUX_FIXTURE } };
}

/** Pulumi hands a program strings; objects and lists arrive JSON-encoded. */
export function asPulumiConfig(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [`k0s-platform:${key}`, typeof value === "string" ? value : JSON.stringify(value)]),
  );
}

export interface ProgramRun {
  readonly registrations: readonly Registration[];
  readonly outputs: Record<string, unknown>;
  /** URN by resource id. */
  readonly urns: Map<string, string>;
  find(type: string, name: string): Registration;
  ofType(type: string): Registration[];
}

export async function runProgram(
  stack: string,
  config: Record<string, unknown>,
  cloud: MockCloud,
  secretKeys: readonly string[] = [],
): Promise<ProgramRun> {
  vi.resetModules();
  const registrations = await installMocks(stack, cloud);
  pulumi.runtime.setAllConfig(
    asPulumiConfig(config),
    secretKeys.map((key) => `k0s-platform:${key}`),
  );
  // index.ts exports the program as a function (`export =`), which the engine calls for the outputs.
  const program = await (await import("../../index")).default();
  await Promise.all(
    Object.values(program)
      .filter((value) => pulumi.Output.isInstance(value))
      .map((output) => new Promise((resolve) => output.apply(resolve))),
  );
  await settled(registrations);
  return {
    registrations,
    outputs: program,
    urns: registeredUrns(),
    find(type, name) {
      const matches = registrations.filter((entry) => entry.type === type && entry.name === name);
      if (matches.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${matches.length}`);
      return matches[0];
    },
    ofType: (type) => registrations.filter((entry) => entry.type === type),
  };
}

/** Registrations that wait on other resources' outputs arrive late; wait until the count holds still. */
async function settled(registrations: readonly Registration[]): Promise<void> {
  let stableTicks = 0;
  let last = -1;
  for (let tick = 0; tick < 500 && stableTicks < 10; tick++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    stableTicks = registrations.length === last ? stableTicks + 1 : 0;
    last = registrations.length;
  }
}

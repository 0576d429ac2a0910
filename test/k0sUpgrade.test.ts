import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { upgradeGuardScript, upgradeProblem } from "../components/lib/k0sUpgrade";

/** What the install script's guard says about `have` becoming `want`, run by bash itself. */
function guard(have: string, want: string): { refused: boolean; message: string } {
  const script = ["set -euo pipefail", `have='${have}'`, `want='${want}'`, ...upgradeGuardScript(), "echo upgrade-allowed"].join("\n");
  const result = spawnSync("bash", ["-c", script], { encoding: "utf8" });
  return { refused: result.status !== 0 || !result.stdout.includes("upgrade-allowed"), message: result.stderr.trim() };
}

describe("k0s version changes", () => {
  it.each([
    ["nothing installed yet", "", "v1.36.3+k0s.2", undefined],
    ["the same release", "v1.36.3+k0s.2", "v1.36.3+k0s.2", undefined],
    ["a later k0s build", "v1.36.3+k0s.0", "v1.36.3+k0s.2", undefined],
    ["a later patch", "v1.35.4+k0s.0", "v1.35.5+k0s.0", undefined],
    ["the next minor", "v1.35.4+k0s.0", "v1.36.3+k0s.2", undefined],
    [
      "a skipped minor",
      "v1.35.4+k0s.0",
      "v1.37.0+k0s.0",
      "Kubernetes upgrades one minor version at a time; set k0sVersion to a v1.36.x release first",
    ],
    ["a new major", "v1.36.3+k0s.2", "v2.0.0+k0s.0", "Kubernetes upgrades one minor version at a time"],
    ["an earlier minor", "v1.36.3+k0s.2", "v1.35.4+k0s.0", "that is a downgrade"],
    ["an earlier patch", "v1.36.3+k0s.2", "v1.36.2+k0s.2", "that is a downgrade"],
    ["an earlier k0s build", "v1.36.3+k0s.2", "v1.36.3+k0s.1", "that is a downgrade"],
  ])("%s: the program and the host's script agree", (_case, have, want, refusal) => {
    const problem = upgradeProblem(have, want);
    const onHost = guard(have, want);
    if (refusal === undefined) {
      expect(problem).toBeUndefined();
      expect(onHost).toEqual({ refused: false, message: "" });
    } else {
      expect(problem).toContain(refusal);
      expect(problem).toContain(`refusing to go from k0s ${have} to ${want}`);
      expect(onHost).toEqual({ refused: true, message: problem });
    }
  });

  it("agrees with the host's script on any pair of releases", () => {
    const tag = fc
      .tuple(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 30, max: 40 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 3 }),
      )
      .map(([major, minor, patch, build]) => `v${major}.${minor}.${patch}+k0s.${build}`);
    fc.assert(
      fc.property(tag, tag, (have, want) => {
        const problem = upgradeProblem(have, want);
        expect(guard(have, want)).toEqual({ refused: problem !== undefined, message: problem ?? "" });
      }),
      { numRuns: 60 },
    );
  });

  it("refuses on the host a version it cannot read, rather than guess", () => {
    expect(guard("v1.36.3-dirty", "v1.36.3+k0s.2")).toEqual({
      refused: true,
      message: "cannot tell whether k0s v1.36.3-dirty may become v1.36.3+k0s.2: not a pinned release",
    });
  });
});

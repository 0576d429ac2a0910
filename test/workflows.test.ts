/**
 * The pull-request preview hands the remote stack's credentials to whatever code a pull request
 * brings: these tests hold the workflow to least privilege, reading it as GitHub would.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "./lib/program";

type Job = { if?: string; environment?: string | { name: string }; permissions?: Record<string, string>; steps: Record<string, any>[] };
type Workflow = { on: Record<string, unknown>; permissions: Record<string, string>; jobs: Record<string, Job> };

const workflow = (): Workflow => parse(fs.readFileSync(path.join(ROOT, ".github/workflows/preview.yml"), "utf8")) as Workflow;
const secretsUsed = (job: Job) => [...JSON.stringify(job.steps).matchAll(/secrets\.([A-Z_]+)/g)].map((match) => match[1]).sort();

/** Every job that can read a secret, and the secrets it reads. */
function jobsWithSecrets(flow: Workflow): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(flow.jobs)
      .map(([name, job]) => [name, secretsUsed(job)] as const)
      .filter(([, secrets]) => secrets.length > 0),
  );
}

describe("the pull-request preview", () => {
  it("never runs on pull_request_target, which would hand a fork's code the base repository's secrets", () => {
    expect(Object.keys(workflow().on).sort()).toEqual(["pull_request", "push"]);
  });

  it("grants the token read access by default, and the preview only what posting its comment needs", () => {
    const flow = workflow();
    expect(flow.permissions).toEqual({ contents: "read" });
    expect(flow.jobs["preview-remote"].permissions).toEqual({ contents: "read", "pull-requests": "write" });
  });

  it("reads secrets in one job only, gated by the protected preview environment and never for a fork", () => {
    const flow = workflow();
    expect(jobsWithSecrets(flow)).toEqual({
      "preview-remote": ["DIGITALOCEAN_READ_TOKEN", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"],
    });
    const preview = flow.jobs["preview-remote"];
    expect(preview.environment).toBe("preview");
    expect(preview.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    expect(preview.if).toContain("github.event_name == 'pull_request'");
  });

  it("runs only actions pinned by commit", () => {
    const uses = Object.values(workflow().jobs).flatMap((job) => job.steps.map((step) => step.uses as string | undefined).filter(Boolean));
    expect(uses.length).toBeGreaterThan(0);
    expect(uses.filter((action) => !/@[0-9a-f]{40}$/.test(action!))).toEqual([]);
  });
});

import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it, vi } from "vitest";
import { capacityWarning, dropletResources } from "../components/lib/capacity";
import { DEFAULTS } from "../components/config";
import { mockCloud } from "./lib/cloud";
import { runProgram, withFluxFixture } from "./lib/program";
import { seedStackConfig } from "./lib/seedStacks";
import { withoutSshAgent } from "./lib/sshAgent";

const GI = 2 ** 30;
/** The remote stack's seed environments, as the program reads them. */
const seedEnvironments = Object.entries(seedStackConfig("remote").environments as Record<string, { quota: Record<string, string> }>).map(
  ([name, { quota }]) => ({ name, quota }),
);

describe("dropletResources", () => {
  it.each([
    ["s-2vcpu-4gb", { cpu: 2, memory: 4 * GI }],
    ["s-8vcpu-16gb", { cpu: 8, memory: 16 * GI }],
    ["g-4vcpu-16gb", { cpu: 4, memory: 16 * GI }],
    ["s-1vcpu-512mb-10gb", { cpu: 1, memory: 512 * 2 ** 20 }],
  ])("reads %s from its slug", (slug, resources) => {
    expect(dropletResources(slug)).toEqual(resources);
  });

  it("says nothing of a slug that does not name its size", () => {
    expect(dropletResources("c-8")).toBeUndefined();
  });
});

describe("capacityWarning", () => {
  it("finds the seed quotas (staging and production) fit the default droplet beside the platform", () => {
    expect(capacityWarning(DEFAULTS.dropletSize, seedEnvironments)).toBeUndefined();
  });

  it("warns, with the figures, when they exceed a smaller droplet", () => {
    expect(capacityWarning("s-2vcpu-4gb", seedEnvironments)).toBe(
      "the environments' quotas let their pods request 5 CPU and 9Gi (staging 1 CPU/1Gi, production 4 CPU/8Gi), " +
        "but droplet s-2vcpu-4gb has 1 CPU and 2Gi for them once k0s, the OS and the platform's own pods have theirs: " +
        "pods beyond that stay Pending. Choose a larger dropletSize or lower the quotas' requests.",
    );
  });

  it("counts milli-CPU and the short quota keys, and stays quiet when they fit", () => {
    const small = [{ name: "staging", quota: { cpu: "500m", memory: "512Mi" } }];
    expect(capacityWarning("s-2vcpu-4gb", small)).toBeUndefined();
    expect(capacityWarning("s-2vcpu-4gb", [...small, { name: "production", quota: { cpu: "600m" } }])).toContain("1.1 CPU and 0.5Gi");
  });
});

describe("the remote stack on a droplet too small for its quotas", () => {
  withoutSshAgent();
  afterEach(() => vi.restoreAllMocks());

  it("warns once and still declares everything: quotas are ceilings, and overcommitting may be on purpose", async () => {
    const warn = vi.spyOn(pulumi.log, "warn").mockImplementation(() => Promise.resolve());
    const settings = {
      adminCidrs: ["203.0.113.7/32"],
      sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme",
      sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
      acmeEmail: "platform@acme-consulting.eu",
    };
    const run = await runProgram(
      "remote",
      withFluxFixture({ ...seedStackConfig("remote"), ...settings, dropletSize: "s-2vcpu-4gb" }),
      mockCloud(),
      ["sshPrivateKey"],
    );
    const warnings = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes("quotas"));
    expect(warnings).toEqual([capacityWarning("s-2vcpu-4gb", seedEnvironments)]);
    expect(run.ofType("digitalocean:index/droplet:Droplet")).toHaveLength(1);
  });
});

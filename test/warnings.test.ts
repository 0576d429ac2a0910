/**
 * What a remote or ssh stack warns about before anything is created, where a refusal would be wrong
 * for some users: host names `domain` makes no DNS record for, and repositories Flux fetches with no
 * credentials. Both are seen only once the cluster serves nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseConfig } from "../components/config";
import { dnsRecords, domainWarning } from "../components/lib/cloudNames";
import { missingCredentialWarnings } from "../components/lib/fluxConfig";
import { mockCloud } from "./lib/cloud";
import { asPulumiConfig, runProgram, USER_REPOSITORY, withFluxFixture } from "./lib/program";
import { seedStackConfig } from "./lib/seedStacks";
import { withoutSshAgent } from "./lib/sshAgent";

const environments = (hosts: Record<string, string[]>) => Object.entries(hosts).map(([name, patterns]) => ({ name, hosts: patterns }));

describe("domainWarning: host names the stack's domain makes no DNS record for", () => {
  it("says nothing when domain covers every host pattern", () => {
    const covered = environments({ staging: ["*.staging.mycorp.com"], production: ["*.mycorp.com", "mycorp.com"] });
    expect(domainWarning("mycorp.com", covered)).toBeUndefined();
  });

  it("names each pattern outside the domain with its key, since those get no record", () => {
    const mixed = environments({ staging: ["*.staging.mycorp.com"], production: ["*.mycorp.com", "shop.other.org"] });
    expect(dnsRecords("mycorp.com", ["shop.other.org"])).toEqual([]);
    expect(domainWarning("mycorp.com", mixed)).toBe(
      "domain mycorp.com does not cover environments.production.hosts[1] (shop.other.org), so this stack makes no DNS record there: " +
        "point those names at the stack output publicIp where their DNS is managed, or move them under mycorp.com",
    );
  });

  it("says so when domain is set and no environment has hosts", () => {
    expect(domainWarning("mycorp.com", environments({ staging: [] }))).toBe(
      "domain mycorp.com is set, but no environment lists hosts, so no DNS record is created: set environments.<env>.hosts under mycorp.com",
    );
  });

  it("without domain, names the seed's placeholder hosts, which nothing resolves and Let's Encrypt refuses", () => {
    const seed = environments({ staging: ["*.staging.example.com"], production: ["*.example.com"] });
    expect(domainWarning(undefined, seed)).toBe(
      "the environments' hosts *.staging.example.com, *.example.com are the seed's placeholder names, which no DNS resolves to this cluster and Let's Encrypt refuses: " +
        "set domain to your DigitalOcean-managed domain and each environment's hosts under it",
    );
    expect(domainWarning(undefined, environments({ production: ["*.mycorp.com"] }))).toBeUndefined();
  });
});

describe("missingCredentialWarnings: repositories Flux fetches over https:// without a token", () => {
  const parse = (config: Record<string, unknown>) =>
    parseConfig(
      "edge",
      Object.fromEntries(Object.entries(asPulumiConfig(config)).map(([key, value]) => [key.replace(/^k0s-platform:/, ""), value])),
    );
  const base = {
    target: "local",
    kubeContext: "Default",
    environments: { staging: { client: "acme", billingGroup: "enterprise" } },
    flux: { url: "https://github.com/acme/gitops" },
  };

  it("names the keys that give Flux credentials, and says a public repository needs none", () => {
    const config = parse(base);
    expect(missingCredentialWarnings(config.flux, config.environments)).toEqual([
      'flux.url https://github.com/acme/gitops has no credentials: if the repository is private, Flux\'s GitRepository stays at "authentication required" and applies nothing. ' +
        "Give Flux a read-only token (`pulumi config set --secret fluxToken <token>`), or use the repository's ssh:// URL with flux.knownHosts and add the stack output fluxDeployKey to it as a read-only deploy key. " +
        "A public repository needs neither.",
    ]);
  });

  it("says the same of a client's own repository, with its environment's keys", () => {
    const config = parse({
      ...base,
      fluxToken: "github_pat_platform",
      environments: { staging: { client: "acme", billingGroup: "enterprise", repository: { url: "https://gitlab.com/acme/shop" } } },
    });
    expect(missingCredentialWarnings(config.flux, config.environments)).toEqual([
      'environments.staging.repository.url https://gitlab.com/acme/shop has no credentials: if the repository is private, Flux\'s GitRepository stays at "authentication required" and applies nothing. ' +
        "Give Flux a read-only token (`pulumi config set --secret --path 'repositoryTokens.staging' <token>`), or use the repository's ssh:// URL with environments.staging.repository.knownHosts and add the stack output clientDeployKeys.staging to it as a read-only deploy key. " +
        "A public repository needs neither.",
    ]);
  });

  it("says nothing with a token, or over ssh:// (the program's deploy key)", () => {
    const withToken = parse({ ...base, fluxToken: "github_pat_platform" });
    const overSsh = parse({
      ...base,
      flux: {
        url: "ssh://git@github.com/acme/gitops",
        knownHosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
      },
    });
    for (const config of [withToken, overSsh]) expect(missingCredentialWarnings(config.flux, config.environments)).toEqual([]);
  });
});

describe("the remote seed stack, as the README has a user complete it", () => {
  withoutSshAgent();
  afterEach(() => vi.restoreAllMocks());
  const settings = {
    adminCidrs: ["203.0.113.7/32"],
    sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme",
    sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    acmeEmail: "platform@acme-consulting.eu",
  };
  const warningsOf = async (config: Record<string, unknown>) => {
    const warn = vi.spyOn(pulumi.log, "warn").mockImplementation(() => Promise.resolve());
    const run = await runProgram("remote", withFluxFixture({ ...seedStackConfig("remote"), ...settings, ...config }), mockCloud(), [
      "sshPrivateKey",
      "fluxToken",
    ]);
    return { run, warnings: warn.mock.calls.map(([message]) => String(message)) };
  };

  it("warns of the placeholder hosts and the repository without credentials, and still declares everything", async () => {
    const { run, warnings } = await warningsOf({});
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("the environments' hosts *.staging.example.com, *.example.com are the seed's placeholder names");
    expect(warnings[1]).toContain(`flux.url ${USER_REPOSITORY} has no credentials`);
    expect(run.ofType("digitalocean:index/droplet:Droplet")).toHaveLength(1);
  });

  it("warns of nothing once domain covers the hosts and Flux has a token", async () => {
    const seedEnvironments = seedStackConfig("remote").environments as Record<string, Record<string, unknown>>;
    const { run, warnings } = await warningsOf({
      domain: "mycorp.com",
      fluxToken: "github_pat_platform",
      environments: {
        staging: { ...seedEnvironments.staging, hosts: ["*.staging.mycorp.com"] },
        production: { ...seedEnvironments.production, hosts: ["*.mycorp.com"] },
      },
    });
    expect(warnings).toEqual([]);
    expect(run.ofType("digitalocean:index/dnsRecord:DnsRecord")).toHaveLength(2);
  });
});

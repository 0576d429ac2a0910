import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { generateIdentity, recipientOf } from "../components/sopsAgeKey";
import { isSecret, promiseOf } from "./mocks";
import { mockCloud } from "./lib/cloud";
import { expectEnvironment, expectExplicitProvider, expectValidAgainstSchemas, graphOf, inputsOf, parentTypeOf, TYPES } from "./lib/graph";
import { ProgramRun, runProgram, withFluxFixture } from "./lib/program";
import { seedStackConfig } from "./lib/seedStacks";

const config = seedStackConfig("dev");
const devConfig = withFluxFixture(config);
let run: ProgramRun;

beforeAll(async () => {
  run = await runProgram("dev", devConfig, mockCloud());
});

/** An entry of a Secret the program declared, decoded. */
const secretEntry = (programRun: ProgramRun, name: string, entry: string): string =>
  Buffer.from(inputsOf(programRun, TYPES.secret, name).data[entry] as string, "base64").toString("utf8");
const proposedIdentity = (programRun: ProgramRun): string => secretEntry(programRun, "flux-sops-age-secret", "age.agekey");
const exportedRecipient = async (programRun: ProgramRun): Promise<{ value: string; secret: boolean }> =>
  promiseOf(programRun.outputs.ageRecipient as pulumi.Output<string>);

describe("dev stack (Pulumi.dev.yaml)", () => {
  it("declares exactly the local cluster, its age key, Flux and the dev environment", () => {
    expect(graphOf(run)).toEqual(
      [
        "k0s-platform:index:LocalCluster local",
        "pulumi:providers:kubernetes local-provider",
        "k0s-platform:index:HostNamePolicy host-names",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy host-names-policy",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding host-names-binding",
        "k0s-platform:index:FluxBootstrap flux",
        "kubernetes:yaml:ConfigFile flux-install",
        "kubernetes:yaml:ConfigFile flux-namespace",
        "kubernetes:yaml:ConfigFile flux-crds",
        "kubernetes:core/v1:Namespace flux-system",
        "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition gitrepositories.source.toolkit.fluxcd.io",
        "kubernetes:core/v1:ServiceAccount flux-system/kustomize-controller",
        "kubernetes:apps/v1:Deployment flux-system/source-controller",
        "kubernetes:apps/v1:Deployment flux-system/kustomize-controller",
        "kubernetes:apps/v1:Deployment flux-system/helm-controller",
        "k0s-platform:index:SopsAgeKey flux-sops-age",
        "kubernetes:core/v1:Secret flux-sops-age-secret",
        "kubernetes:core/v1:ConfigMap flux-cluster-settings",
        "kubernetes:core/v1:Secret flux-cluster-secrets",
        "kubernetes:source.toolkit.fluxcd.io/v1:GitRepository flux-source",
        "kubernetes:kustomize.toolkit.fluxcd.io/v1:Kustomization flux-sync",
        "k0s-platform:index:EnvironmentNamespace dev",
        "kubernetes:scheduling.k8s.io/v1:PriorityClass dev-priority",
        "kubernetes:core/v1:Namespace dev-namespace",
        "kubernetes:core/v1:ResourceQuota dev-quota",
        "kubernetes:core/v1:LimitRange dev-limits",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-deny-ingress",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-allow-traefik",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-allow-same-namespace",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-deny-egress",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-allow-dns",
        "kubernetes:core/v1:ServiceAccount dev-reconciler",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding dev-reconciler-binding",
        "k0s-platform:index:SopsAgeKey dev-sops-age",
        "kubernetes:core/v1:Secret dev-sops-age-secret",
      ].sort(),
    );
  });

  it("points the provider at the configured kubeconfig and explicit context", () => {
    expect(run.find("pulumi:providers:kubernetes", "local-provider").inputs).toMatchObject({
      kubeconfig: "/var/lib/k0s/pki/admin.conf",
      context: "Default",
    });
  });

  it("applies every Kubernetes object through that provider", () => expectExplicitProvider(run, "local-provider"));

  it("declares only objects the Kubernetes and Flux schemas accept", () => expectValidAgainstSchemas(run));

  it("gives dev its relaxed quota, container defaults and isolation", () => {
    expectEnvironment(run, {
      name: "dev",
      client: "acme",
      billingGroup: "enterprise",
      hosts: ["*.dev.localtest.me"],
      quota: { "requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4", "limits.memory": "8Gi", pods: "30" },
      isolated: true,
    });
    expect(inputsOf(run, TYPES.limitRange, "dev-limits").spec).toEqual({
      limits: [{ type: "Container", defaultRequest: { cpu: "100m", memory: "128Mi" }, default: { cpu: "500m", memory: "512Mi" } }],
    });
  });

  it("writes a fresh X25519 identity to flux-system/sops-age as a secret, after Flux's namespace exists", () => {
    const secret = run.find(TYPES.secret, "flux-sops-age-secret");
    expect(isSecret(secret.inputs.data)).toBe(true);
    expect(inputsOf(run, TYPES.secret, "flux-sops-age-secret").metadata).toEqual({ name: "sops-age", namespace: "flux-system" });
    expect(proposedIdentity(run)).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    expect(secret.options.dependencies).toContain(run.urns.get(run.find(TYPES.namespace, "flux-system").id));
  });

  it("exports the recipient of that identity, in the clear", async () => {
    const { value, secret } = await exportedRecipient(run);
    expect(value).toBe(await recipientOf(proposedIdentity(run)));
    expect(value).toMatch(/^age1[0-9a-z]{58}$/);
    expect(secret).toBe(false);
  });

  it("gives dev its own key, apart from the cluster's, and exports its recipient per environment in the clear", async () => {
    const devIdentity = secretEntry(run, "dev-sops-age-secret", "age.agekey");
    expect(devIdentity).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    expect(devIdentity).not.toBe(proposedIdentity(run));
    expect(isSecret(run.find(TYPES.secret, "dev-sops-age-secret").inputs.data)).toBe(true);
    const { value, secret } = await promiseOf(run.outputs.ageRecipients as pulumi.Output<Record<string, string>>);
    expect(value).toEqual({ dev: await recipientOf(devIdentity) });
    expect(secret).toBe(false);
  });

  it("keeps the key it created: later runs read it back from the Secret and ignore new proposals", async () => {
    expect(run.find(TYPES.secret, "flux-sops-age-secret").options.ignoreChanges).toEqual(['data["age.agekey"]']);
    const stored = await generateIdentity();
    const laterRun = await runProgram("dev", devConfig, mockCloud({ storedAgeIdentity: stored }));
    expect(proposedIdentity(laterRun)).not.toBe(stored);
    expect((await exportedRecipient(laterRun)).value).toBe(await recipientOf(stored));
  });

  it("creates Flux's source and sync only once the decryption Secret exists", () => {
    const secretUrn = run.urns.get(run.find(TYPES.secret, "flux-sops-age-secret").id);
    expect(run.find(TYPES.gitRepository, "flux-source").options.dependencies).toContain(secretUrn);
    expect(run.find(TYPES.kustomization, "flux-sync").options.dependencies).toContain(secretUrn);
  });

  it("syncs ./clusters/local from the configured repository with SOPS decryption", () => {
    expect(inputsOf(run, TYPES.gitRepository, "flux-source")).toMatchObject({
      metadata: { name: "flux-system", namespace: "flux-system" },
      spec: { interval: "1m", url: "https://github.com/acme/k0s-platform-gitops", ref: { branch: "main" } },
    });
    expect(inputsOf(run, TYPES.kustomization, "flux-sync").spec).toEqual({
      interval: "1m",
      path: "./clusters/local",
      prune: true,
      serviceAccountName: "kustomize-controller",
      sourceRef: { kind: "GitRepository", name: "flux-system" },
      decryption: { provider: "sops", secretRef: { name: "sops-age" } },
    });
  });

  it("locks Flux down for tenants: no controller-wide age key, `default` unless a Kustomization names its account", () => {
    for (const controller of ["kustomize-controller", "helm-controller"]) {
      const args: string[] = inputsOf(run, "kubernetes:apps/v1:Deployment", `flux-system/${controller}`).spec.template.spec.containers[0]
        .args;
      expect(args, controller).toEqual(expect.arrayContaining(["--no-cross-namespace-refs=true", "--default-service-account=default"]));
      expect(
        args.some((arg) => arg.startsWith("--sops-age-secret")),
        controller,
      ).toBe(false);
    }
  });

  it("creates the tenant's account in Flux's namespace once that namespace exists", () => {
    const namespaceUrn = run.urns.get(run.find("kubernetes:core/v1:Namespace", "flux-system").id)!;
    expect(run.find(TYPES.serviceAccount, "dev-reconciler").options.dependencies).toContain(namespaceUrn);
  });

  it("starts Flux's controllers only once its CRDs exist, and makes nothing else wait for them", () => {
    const crd = run.find("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "gitrepositories.source.toolkit.fluxcd.io");
    const crdUrn = run.urns.get(crd.id)!;
    // Same URN as when the CRDs were children of flux-install: a stack made before the split keeps them.
    expect(crdUrn).toMatch(/ConfigFile\$kubernetes:apiextensions\.k8s\.io\/v1:CustomResourceDefinition::gitrepositories/);
    expect(crdUrn).not.toContain("flux-crds");
    const deployments = run.ofType("kubernetes:apps/v1:Deployment");
    expect(deployments).toHaveLength(3);
    for (const deployment of deployments) expect(deployment.options.dependencies, deployment.name).toContain(crdUrn);
    expect(run.find("kubernetes:core/v1:ServiceAccount", "flux-system/kustomize-controller").options.dependencies).not.toContain(crdUrn);
    expect(run.find("kubernetes:source.toolkit.fluxcd.io/v1:GitRepository", "flux-source").options.dependencies).toContain(crdUrn);
  });

  it("creates Flux's namespace before anything of Flux that lives in it", () => {
    const namespaceObject = run.find("kubernetes:core/v1:Namespace", "flux-system");
    expect(parentTypeOf(run, namespaceObject)).toBe("kubernetes:yaml:ConfigFile");
    expect(run.urns.get(namespaceObject.id)).toContain("ConfigFile$kubernetes:core/v1:Namespace");
    const namespaceUrn = run.urns.get(namespaceObject.id)!;
    const inNamespace = run.registrations.filter((entry) => (entry.inputs as any).metadata?.namespace === "flux-system");
    expect(inNamespace.map((entry) => entry.name)).toEqual(
      expect.arrayContaining(["flux-system/kustomize-controller", "flux-sops-age-secret", "flux-source", "flux-sync"]),
    );
    for (const entry of inNamespace.filter((candidate) => candidate.name !== "flux-sops-age-secret")) {
      expect(entry.options.dependencies, entry.name).toContain(namespaceUrn);
    }
    // The Secret waits through its namespace field, which is the Namespace object's output.
    expect(inputsOf(run, "kubernetes:core/v1:Secret", "flux-sops-age-secret").metadata.namespace).toBe("flux-system");
  });

  it("keeps every child under its component", () => {
    const parents = Object.fromEntries(run.registrations.map((entry) => [entry.name, parentTypeOf(run, entry)]));
    expect(parents).toMatchObject({
      "local-provider": "k0s-platform:index:LocalCluster",
      "flux-install": "k0s-platform:index:FluxBootstrap",
      "flux-sops-age": "k0s-platform:index:FluxBootstrap",
      "flux-sops-age-secret": "k0s-platform:index:SopsAgeKey",
      "flux-source": "k0s-platform:index:FluxBootstrap",
      "flux-sync": "k0s-platform:index:FluxBootstrap",
      "flux-system/kustomize-controller": "kubernetes:yaml:ConfigFile",
      local: undefined,
      dev: undefined,
    });
  });
});

describe("dev stack following a private repository", () => {
  const KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  const overSsh = withFluxFixture({
    ...config,
    flux: { ...(config.flux as object), url: "ssh://git@github.com/acme/gitops.git", knownHosts: KNOWN_HOSTS },
  });
  /** The Secret Flux authenticates with: the deploy key's (ssh://) or the token's (https://). */
  const credentialsName = (programRun: ProgramRun) =>
    programRun.ofType(TYPES.secret).find((entry) => entry.name.startsWith("flux-git-"))!.name;
  const credentials = (programRun: ProgramRun) => inputsOf(programRun, TYPES.secret, credentialsName(programRun));
  const decoded = (programRun: ProgramRun, key: string) => secretEntry(programRun, credentialsName(programRun), key);

  it("over SSH: generates a deploy key, pins the Git host, and exports only the public half", async () => {
    const ssh = await runProgram("dev", overSsh, mockCloud());
    expect(credentials(ssh).metadata).toEqual({ name: "flux-system-deploy-key", namespace: "flux-system" });
    expect(isSecret(ssh.find(TYPES.secret, "flux-git-deploy-key").inputs.data)).toBe(true);
    expect(decoded(ssh, "identity")).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----\n$/);
    expect(decoded(ssh, "known_hosts")).toBe(`${KNOWN_HOSTS}\n`);
    expect(inputsOf(ssh, TYPES.gitRepository, "flux-source").spec).toMatchObject({
      url: "ssh://git@github.com/acme/gitops.git",
      secretRef: { name: "flux-system-deploy-key" },
    });
    expect(ssh.find(TYPES.gitRepository, "flux-source").options.dependencies).toContain(
      ssh.urns.get(ssh.find(TYPES.secret, "flux-git-deploy-key").id),
    );
    const { value, secret } = await promiseOf(ssh.outputs.fluxDeployKey as pulumi.Output<string>);
    expect(secret).toBe(false);
    expect(value).toBe(decoded(ssh, "identity.pub").trim());
    expect(value).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=* flux@dev$/);
    // The private key OpenSSH itself reads, whose public half is the one exported.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deploy-key-"));
    try {
      fs.writeFileSync(path.join(dir, "id"), decoded(ssh, "identity"), { mode: 0o600 });
      const derived = execFileSync("ssh-keygen", ["-y", "-f", path.join(dir, "id")], { encoding: "utf8" }).trim();
      expect(derived.split(" ").slice(0, 2)).toEqual(value.split(" ").slice(0, 2));
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it("over SSH: keeps the deploy key pasted into the Git host; a new known_hosts pin still reaches the cluster", async () => {
    const ssh = await runProgram("dev", overSsh, mockCloud());
    expect(ssh.find(TYPES.secret, "flux-git-deploy-key").options.ignoreChanges).toEqual(["data.identity", 'data["identity.pub"]']);
    const stored = {
      identity: "-----BEGIN OPENSSH PRIVATE KEY-----\nstored\n-----END OPENSSH PRIVATE KEY-----\n",
      publicKey: "ssh-ed25519 AAAAstored flux@dev\n",
    };
    const later = await runProgram("dev", overSsh, mockCloud({ storedDeployKey: stored }));
    expect((await promiseOf(later.outputs.fluxDeployKey as pulumi.Output<string>)).value).toBe("ssh-ed25519 AAAAstored flux@dev");
  });

  it("switching from https:// to ssh:// creates the deploy key's Secret, rather than replacing the token's where the key is ignored", async () => {
    const https = await runProgram("dev", withFluxFixture({ ...config, fluxToken: "glpat-read-only" }), mockCloud(), ["fluxToken"]);
    const ssh = await runProgram("dev", overSsh, mockCloud());
    // Another resource with another object name, created with its key: the same resource, even
    // replaced, keeps an ignored path as the old state has it (absent).
    expect(credentialsName(ssh)).not.toBe(credentialsName(https));
    expect(credentials(ssh).metadata.name).not.toBe(credentials(https).metadata.name);
    expect(inputsOf(ssh, TYPES.gitRepository, "flux-source").spec.secretRef).toEqual({ name: credentials(ssh).metadata.name });
  });

  it("over HTTPS: hands Flux the token, secret, with its user and the Git server's CA", async () => {
    const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const https = await runProgram(
      "dev",
      withFluxFixture({
        ...config,
        fluxToken: "glpat-read-only",
        flux: { ...(config.flux as object), url: "https://git.acme.internal/gitops.git", username: "oauth2", caCertificate: ca },
      }),
      mockCloud(),
      ["fluxToken"],
    );
    expect(isSecret(https.find(TYPES.secret, "flux-git-credentials").inputs.data)).toBe(true);
    expect(["username", "password", "ca.crt"].map((key) => decoded(https, key))).toEqual(["oauth2", "glpat-read-only", ca]);
    expect(inputsOf(https, TYPES.gitRepository, "flux-source").spec.secretRef).toEqual({ name: "flux-system" });
    expect(https.outputs.fluxDeployKey).toBeUndefined();
  });

  it("refuses a token stored in plain text, naming the command that stores it as a secret", async () => {
    await expect(runProgram("dev", withFluxFixture({ ...config, fluxToken: "glpat-read-only" }), mockCloud())).rejects.toThrow(
      "k0s-platform:fluxToken is stored in plain text: set it again with `pulumi config set --secret fluxToken <token>`",
    );
  });

  it("needs no credentials for a public https:// repository, and declares none", () => {
    expect(run.ofType(TYPES.secret).map((entry) => entry.name)).not.toContain("flux-git-credentials");
    expect(inputsOf(run, TYPES.gitRepository, "flux-source").spec.secretRef).toBeUndefined();
  });
});

describe("dev stack following a second client's own repository", () => {
  const globex = { client: "globex", billingGroup: "standard", hosts: ["*.globex.localtest.me"] };
  const withClient = (repository: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    withFluxFixture({
      ...config,
      ...extra,
      environments: { ...(config.environments as object), globex: { ...globex, repository } },
    });
  const overHttps = withClient(
    { url: "https://git.globex.example/gitops.git", username: "oauth2" },
    { repositoryTokens: { globex: "glpat-globex" } },
  );

  it("applies the client's folder into its namespace alone, as its tenant, with its own key, after the platform", async () => {
    const two = await runProgram("dev", overHttps, mockCloud(), ["repositoryTokens"]);
    expect(inputsOf(two, TYPES.gitRepository, "globex-repository-source")).toMatchObject({
      metadata: { name: "globex", namespace: "flux-system" },
      spec: { url: "https://git.globex.example/gitops.git", ref: { branch: "main" }, secretRef: { name: "globex-git" } },
    });
    expect(inputsOf(two, TYPES.kustomization, "globex-repository-sync")).toMatchObject({
      metadata: { name: "globex", namespace: "flux-system" },
      spec: {
        sourceRef: { kind: "GitRepository", name: "globex" },
        path: "./apps/overlays/globex",
        targetNamespace: "globex",
        serviceAccountName: "tenant-globex",
        decryption: { provider: "sops", secretRef: { name: "sops-age-globex" } },
        dependsOn: [{ name: "infra-configs" }],
        prune: true,
      },
    });
    expect(["username", "password"].map((key) => secretEntry(two, "globex-repository-git-credentials", key))).toEqual([
      "oauth2",
      "glpat-globex",
    ]);
    expect(isSecret(two.find(TYPES.secret, "globex-repository-git-credentials").inputs.data)).toBe(true);
    // The platform's repository is untouched: the same root sync, beside the client's.
    expect(inputsOf(two, TYPES.gitRepository, "flux-source").spec).toEqual(inputsOf(run, TYPES.gitRepository, "flux-source").spec);
    expectValidAgainstSchemas(two);
    // Only after Flux (whose CRDs come with it), the environment's tenant account and its key exist.
    const dependencies = two.find(TYPES.kustomization, "globex-repository-sync").options.dependencies ?? [];
    for (const [type, name] of [
      [TYPES.kustomization, "flux-sync"],
      [TYPES.serviceAccount, "globex-reconciler"],
      [TYPES.secret, "globex-sops-age-secret"],
    ]) {
      expect(dependencies, name).toContain(two.urns.get(two.find(type, name).id));
    }
  });

  it("over SSH: a deploy key of its own, exported by environment", async () => {
    const KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ssh = await runProgram(
      "dev",
      withClient({ url: "ssh://git@github.com/globex/gitops.git", knownHosts: KNOWN_HOSTS }),
      mockCloud(),
    );
    const { value } = await promiseOf(ssh.outputs.clientDeployKeys as pulumi.Output<Record<string, string>>);
    expect(Object.keys(value)).toEqual(["globex"]);
    expect(value.globex).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=* flux-globex@dev$/);
    expect(secretEntry(ssh, "globex-repository-git-deploy-key", "known_hosts")).toBe(`${KNOWN_HOSTS}\n`);
  });

  it("takes the token map left empty by removing the last client's token, which holds nothing secret", async () => {
    const removed = await runProgram("dev", { ...devConfig, repositoryTokens: {} }, mockCloud());
    expect(removed.ofType(TYPES.gitRepository).map((entry) => entry.name)).toEqual(["flux-source"]);
  });

  it("refuses the client's token stored in plain text, naming the command that stores it as a secret", async () => {
    await expect(runProgram("dev", overHttps, mockCloud())).rejects.toThrow(
      "k0s-platform:repositoryTokens is stored in plain text: set it again with `pulumi config set --secret --path 'repositoryTokens.<environment>' <token>`",
    );
  });
});

describe("dev stack rotating and importing its age keys", () => {
  const entries = (programRun: ProgramRun, name: string) => Object.keys(inputsOf(programRun, TYPES.secret, name).data).sort();

  it("adds generation 2 beside the first in every key's Secret, each kept once made, and makes it the recipient", async () => {
    const rotated = await runProgram("dev", { ...devConfig, ageKeyGeneration: "2" }, mockCloud());
    for (const [owner, secretName] of [
      ["flux", "sops-age"],
      ["dev", "sops-age-dev"],
    ]) {
      const name = `${owner}-sops-age-secret`;
      expect(entries(rotated, name), name).toEqual(["age-2.agekey", "age.agekey"]);
      expect(rotated.find(TYPES.secret, name).options.ignoreChanges).toEqual(['data["age.agekey"]']);
      // Generated into a Secret of its own that keeps it, and copied from what that Secret stores.
      const keeper = `${owner}-sops-age-generation-2`;
      expect(inputsOf(rotated, TYPES.secret, keeper).metadata).toEqual({ name: `${secretName}.generation-2`, namespace: "flux-system" });
      expect(rotated.find(TYPES.secret, keeper).options.ignoreChanges).toEqual(["data"]);
      expect(secretEntry(rotated, name, "age-2.agekey")).toBe(secretEntry(rotated, keeper, "age.agekey"));
      expect(secretEntry(rotated, name, "age-2.agekey")).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    }
    expect((await exportedRecipient(rotated)).value).toBe(await recipientOf(secretEntry(rotated, "flux-sops-age-secret", "age-2.agekey")));
    const { value } = await promiseOf(rotated.outputs.ageRecipients as pulumi.Output<Record<string, string>>);
    expect(value.dev).toBe(await recipientOf(secretEntry(rotated, "dev-sops-age-secret", "age-2.agekey")));
  });

  it("drops the previous generation once keepPreviousAgeKey is false", async () => {
    const retired = await runProgram("dev", { ...devConfig, ageKeyGeneration: "2", keepPreviousAgeKey: "false" }, mockCloud());
    expect(entries(retired, "flux-sops-age-secret")).toEqual(["age-2.agekey"]);
    // Nothing ignored on the decryption Secret any more, so the engine removes the first generation.
    expect(retired.find(TYPES.secret, "flux-sops-age-secret").options.ignoreChanges).toEqual([]);
  });

  it("uses an imported identity as given, and follows it when it changes (a second workstation, a restored laptop)", async () => {
    const identity = await generateIdentity();
    const imported = await runProgram(
      "dev",
      { ...devConfig, ageIdentities: { cluster: `# created: 2026-12-01\n# public key: …\n${identity}\n` } },
      mockCloud(),
      ["ageIdentities"],
    );
    expect(secretEntry(imported, "flux-sops-age-secret", "age.agekey")).toBe(identity);
    expect(imported.find(TYPES.secret, "flux-sops-age-secret").options.ignoreChanges).toEqual([]);
    expect((await exportedRecipient(imported)).value).toBe(await recipientOf(identity));
    // dev's own key was not imported: generated, and kept.
    expect(secretEntry(imported, "dev-sops-age-secret", "age.agekey")).not.toBe(identity);
  });

  it("refuses imported identities stored in plain text", async () => {
    await expect(runProgram("dev", { ...devConfig, ageIdentities: { cluster: await generateIdentity() } }, mockCloud())).rejects.toThrow(
      "k0s-platform:ageIdentities is stored in plain text",
    );
  });
});

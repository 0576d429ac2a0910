import { beforeAll, describe, expect, it } from "vitest";
import { recipientOf } from "../components/sopsAgeKey";
import { isSecret } from "./mocks";
import { mockCloud } from "./lib/cloud";
import { expectEnvironment, expectExplicitProvider, expectValidAgainstSchemas, graphOf, inputsOf, parentTypeOf, TYPES } from "./lib/graph";
import { FLUX_FIXTURE, ProgramRun, runProgram, stackFileConfig } from "./lib/program";

let run: ProgramRun;
let identity: string;

beforeAll(async () => {
  const config = stackFileConfig("dev");
  const cloud = await mockCloud();
  identity = cloud.ageIdentity;
  run = await runProgram("dev", { ...config, flux: { ...(config.flux as object), manifestPath: FLUX_FIXTURE } }, cloud);
});

describe("dev stack (Pulumi.dev.yaml)", () => {
  it("declares exactly the local cluster, its age key, Flux and the dev environment", () => {
    expect(graphOf(run)).toEqual(
      [
        "k0s-platform:index:LocalCluster local",
        "pulumi:providers:kubernetes local-provider",
        "k0s-platform:index:SopsAgeKey sops-age-key",
        "command:local:Command sops-age-key-identity",
        "k0s-platform:index:FluxBootstrap flux",
        "kubernetes:yaml:ConfigFile flux-install",
        "kubernetes:core/v1:Namespace flux-system",
        "kubernetes:core/v1:ServiceAccount flux-system/kustomize-controller",
        "kubernetes:apps/v1:Deployment flux-system/source-controller",
        "kubernetes:apps/v1:Deployment flux-system/kustomize-controller",
        "kubernetes:core/v1:Secret flux-sops-age",
        "kubernetes:source.toolkit.fluxcd.io/v1:GitRepository flux-source",
        "kubernetes:kustomize.toolkit.fluxcd.io/v1:Kustomization flux-sync",
        "k0s-platform:index:EnvironmentNamespace dev",
        "kubernetes:core/v1:Namespace dev-namespace",
        "kubernetes:core/v1:ResourceQuota dev-quota",
        "kubernetes:core/v1:LimitRange dev-limits",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-deny-ingress",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-allow-traefik",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy dev-allow-same-namespace",
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
      quota: { "requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4", "limits.memory": "8Gi", pods: "30" },
      isolated: true,
    });
    expect(inputsOf(run, TYPES.limitRange, "dev-limits").spec).toEqual({
      limits: [{ type: "Container", defaultRequest: { cpu: "100m", memory: "128Mi" }, default: { cpu: "500m", memory: "512Mi" } }],
    });
  });

  it("writes the generated identity to flux-system/sops-age as a secret", () => {
    const secret = run.find(TYPES.secret, "flux-sops-age");
    expect(isSecret(secret.inputs.stringData)).toBe(true);
    expect(inputsOf(run, TYPES.secret, "flux-sops-age")).toMatchObject({
      metadata: { name: "sops-age", namespace: "flux-system" },
      stringData: { "age.agekey": identity },
    });
  });

  it("never logs the identity and keeps it secret in state", () => {
    const generator = run.find("command:local:Command", "sops-age-key-identity");
    expect(generator.inputs).toMatchObject({ create: "node scripts/age-keygen.mjs", logging: "none" });
    expect(generator.inputs.update).toContain("$PULUMI_COMMAND_STDOUT");
  });

  it("exports the recipient of that identity, in the clear", async () => {
    const output = run.outputs.ageRecipient as import("@pulumi/pulumi").Output<string>;
    const { promiseOf } = await import("./mocks");
    const { value, secret } = await promiseOf(output);
    expect(value).toBe(await recipientOf(identity));
    expect(value).toMatch(/^age1[0-9a-z]{58}$/);
    expect(secret).toBe(false);
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
      sourceRef: { kind: "GitRepository", name: "flux-system" },
      decryption: { provider: "sops", secretRef: { name: "sops-age" } },
    });
  });

  it("lets kustomize-controller decrypt for the repository's own Kustomizations", () => {
    const deployment = inputsOf(run, "kubernetes:apps/v1:Deployment", "flux-system/kustomize-controller");
    expect(deployment.spec.template.spec.containers[0].args).toContain("--sops-age-secret=sops-age");
  });

  it("keeps every child under its component", () => {
    const parents = Object.fromEntries(run.registrations.map((entry) => [entry.name, parentTypeOf(run, entry)]));
    expect(parents).toMatchObject({
      "local-provider": "k0s-platform:index:LocalCluster",
      "sops-age-key-identity": "k0s-platform:index:SopsAgeKey",
      "flux-install": "k0s-platform:index:FluxBootstrap",
      "flux-sops-age": "k0s-platform:index:FluxBootstrap",
      "flux-source": "k0s-platform:index:FluxBootstrap",
      "flux-sync": "k0s-platform:index:FluxBootstrap",
      "flux-system/kustomize-controller": "kubernetes:yaml:ConfigFile",
      local: undefined,
      dev: undefined,
    });
  });
});

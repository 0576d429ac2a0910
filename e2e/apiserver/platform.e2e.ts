/**
 * End to end: the real program, a real Pulumi engine with the real Kubernetes provider, and a real
 * API server (with controller-manager) on 127.0.0.1. Runs the dev and local-staging stack files as
 * a user would, then checks what landed in the cluster, idempotence, state secrecy, config errors,
 * a quota edit and teardown. Steps run in order and share one cluster.
 */
import * as k8s from "@pulumi/kubernetes";
import type { Stack } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recipientOf } from "../components/sopsAgeKey";
import { clusterForTests, TestCluster } from "./cluster";
import { Engine, localStackOverrides, startEngine } from "./pulumiHarness";

const ENVIRONMENT_KINDS = ["resourcequotas", "limitranges"] as const;
const STAGING_QUOTA = { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", pods: "20" };

let cluster: TestCluster;
let engine: Engine;
let dev: Stack;
let staging: Stack;

beforeAll(async () => {
  cluster = await clusterForTests();
  engine = await startEngine({ usePath: process.env.PULUMI_E2E_USE_PATH === "1" });
  const overrides = localStackOverrides(engine, cluster);
  dev = await engine.stack("dev", overrides);
  staging = await engine.stack("local-staging", overrides);
}, 120_000);

afterAll(async () => {
  engine?.dispose();
  await cluster?.stop();
});

const api = () => cluster.client;

/** The age identity in flux-system/sops-age, decoded and as stored (base64). */
async function storedAgeKey(): Promise<{ identity: string; stored: string }> {
  const secret = await api().get("/api/v1/namespaces/flux-system/secrets/sops-age");
  const stored: string = secret.data["age.agekey"];
  return { identity: Buffer.from(stored, "base64").toString("utf8"), stored };
}
const outputsOf = async (stack: Stack) =>
  Object.fromEntries(Object.entries(await stack.outputs()).map(([key, output]) => [key, output.value]));

describe("pulumi up", () => {
  it("brings up dev, then local-staging on the same cluster", async () => {
    const devResult = await dev.up();
    expect(devResult.summary.result).toBe("succeeded");
    const stagingResult = await staging.up();
    expect(stagingResult.summary.result).toBe("succeeded");
  }, 300_000);

  it("labels both namespaces, and a label selector finds them as kubectl get ns -l does", async () => {
    const namespaces = await api().list("/api/v1/namespaces?labelSelector=billing-group%3Denterprise");
    expect(namespaces.map((ns) => ns.metadata.name).sort()).toEqual(["dev", "staging"]);
    for (const ns of namespaces) {
      expect(ns.metadata.labels).toMatchObject({ environment: ns.metadata.name, client: "acme", "billing-group": "enterprise" });
    }
  });

  it("applies each stack's quota and container defaults", async () => {
    const staged = await api().get("/api/v1/namespaces/staging/resourcequotas/environment-quota");
    expect(staged.spec.hard).toEqual(STAGING_QUOTA);
    const devQuota = await api().get("/api/v1/namespaces/dev/resourcequotas/environment-quota");
    expect(devQuota.spec.hard).toEqual({
      "requests.cpu": "2",
      "requests.memory": "4Gi",
      "limits.cpu": "4",
      "limits.memory": "8Gi",
      pods: "30",
    });
    const limits = await api().get("/api/v1/namespaces/staging/limitranges/container-defaults");
    expect(limits.spec.limits).toEqual([
      { type: "Container", default: { cpu: "500m", memory: "512Mi" }, defaultRequest: { cpu: "100m", memory: "128Mi" } },
    ]);
  });

  it("isolates each namespace with exactly the three policies", async () => {
    for (const namespace of ["dev", "staging"]) {
      const policies = await api().list(`/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`);
      const specs = Object.fromEntries(policies.map((policy) => [policy.metadata.name, policy.spec]));
      expect(specs).toEqual({
        "default-deny-ingress": { podSelector: {}, policyTypes: ["Ingress"] },
        "allow-traefik-ingress": {
          podSelector: {},
          policyTypes: ["Ingress"],
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "traefik" } } }] }],
        },
        "allow-same-namespace": { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: {} }] }] },
      });
    }
  });

  it("stores the age identity in flux-system/sops-age, matching the recipient both stacks export", async () => {
    const { identity } = await storedAgeKey();
    expect(identity).toMatch(/^AGE-SECRET-KEY-1/);
    const recipient = await recipientOf(identity);
    expect((await outputsOf(dev)).ageRecipient).toBe(recipient);
    expect((await outputsOf(staging)).ageRecipient).toBe(recipient);
  });

  it("has the Flux CRDs accept the GitRepository and the Kustomization with SOPS decryption", async () => {
    const source = await api().get("/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system");
    expect(source.spec).toMatchObject({ url: "https://github.com/acme/k0s-platform-gitops", ref: { branch: "main" }, interval: "1m" });
    const sync = await api().get("/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/flux-system");
    expect(sync.spec).toMatchObject({
      path: "./clusters/local",
      prune: true,
      sourceRef: { kind: "GitRepository", name: "flux-system" },
      decryption: { provider: "sops", secretRef: { name: "sops-age" } },
    });
  });
});

describe("the ambient kubeconfig", () => {
  it("is never used: a Kubernetes resource without the explicit provider fails", async () => {
    const stray = () => {
      new k8s.core.v1.Namespace("stray", { metadata: { name: "stray" } });
      return Promise.resolve({});
    };
    const guard = await engine.stack("guard", {}, { program: stray, config: { "k0s-platform:target": "local" } });
    await expect(guard.up()).rejects.toThrow(/Default provider for 'kubernetes' disabled/);
    expect((await api().request("GET", "/api/v1/namespaces/stray")).status).toBe(404);
  }, 120_000);
});

describe("the quota is enforced", () => {
  const pod = (name: string, cpu: string) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: { containers: [{ name: "app", image: "registry.invalid/app:1", resources: { requests: { cpu }, limits: { cpu } } }] },
  });

  it("refuses a pod above the staging quota and admits one inside it", async () => {
    await api().waitFor("quota status", async () => {
      const quota = await api().get("/api/v1/namespaces/staging/resourcequotas/environment-quota");
      return quota.status?.hard === undefined ? undefined : quota;
    });
    const refused = await api().request("POST", "/api/v1/namespaces/staging/pods", pod("too-big", "3"));
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/exceeded quota: environment-quota/);
    const admitted = await api().request("POST", "/api/v1/namespaces/staging/pods", pod("fits", "250m"));
    expect(admitted.status).toBe(201);
    await api().request("DELETE", "/api/v1/namespaces/staging/pods/fits?gracePeriodSeconds=0");
  });
});

describe("a second run", () => {
  it("previews no changes and refresh finds no drift", async () => {
    for (const stack of [dev, staging]) {
      const preview = await stack.preview();
      expect(
        Object.keys(preview.changeSummary).filter((op) => op !== "same"),
        stack.name,
      ).toEqual([]);
      const refresh = await stack.refresh();
      expect(
        Object.keys(refresh.summary.resourceChanges ?? {}).filter((op) => op !== "same"),
        stack.name,
      ).toEqual([]);
    }
  }, 300_000);
});

describe("the state", () => {
  it("holds neither the age identity nor any kubeconfig credential in plaintext", async () => {
    const { identity, stored } = await storedAgeKey();
    for (const stack of [dev, staging]) {
      const exported = engine.exportedState(stack.name);
      if (stack === dev) expect(exported).toContain("ciphertext");
      for (const credential of [identity, stored, ...cluster.credentials]) {
        expect(exported.includes(credential), `${stack.name} state leaks a credential`).toBe(false);
      }
    }
  });
});

/** uid and resourceVersion of everything the stacks manage, to prove a run changed nothing. */
async function clusterSnapshot(): Promise<string[]> {
  const paths = [
    "/api/v1/namespaces",
    ...["dev", "staging"].flatMap((ns) => [
      ...ENVIRONMENT_KINDS.map((kind) => `/api/v1/namespaces/${ns}/${kind}`),
      `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`,
    ]),
    "/api/v1/namespaces/flux-system/secrets",
    "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories",
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations",
  ];
  const lists = await Promise.all(paths.map((listPath) => api().list(listPath)));
  return lists
    .flat()
    .map((obj) => `${obj.metadata.namespace ?? ""}/${obj.metadata.name} ${obj.metadata.uid} ${obj.metadata.resourceVersion}`)
    .sort();
}

describe("a bad stack config", () => {
  const env = (quota: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    staging: { client: "acme", billingGroup: "enterprise", quota, ...extra },
  });
  it.each([
    ["unknown target", { "k0s-platform:target": "cloud" }, 'k0s-platform:target: "cloud" is not allowed'],
    [
      "namespace not DNS-1123",
      { "k0s-platform:environments": { Staging_1: { client: "acme", billingGroup: "enterprise" } } },
      '"Staging_1" is not a valid namespace name',
    ],
    [
      "label value",
      { "k0s-platform:environments": env(STAGING_QUOTA, { client: "acme corp" }) },
      '"acme corp" must be a Kubernetes label value',
    ],
    ["quota key", { "k0s-platform:environments": env({ "request.cpu": "1" }) }, '"request.cpu" is not a ResourceQuota resource'],
    [
      "quantity",
      { "k0s-platform:environments": env({ ...STAGING_QUOTA, "requests.memory": "1GB" }) },
      '"1GB" is not a Kubernetes quantity',
    ],
    ["request above limit", { "k0s-platform:environments": env({ ...STAGING_QUOTA, "requests.cpu": "3" }) }, '"3" is above limits.cpu "2"'],
    ["admin CIDR", { "k0s-platform:target": "remote", "k0s-platform:adminCidrs": ["10.0.0.1"] }, '"10.0.0.1" must be a CIDR block'],
    [
      "missing secret",
      { "k0s-platform:target": "remote", "k0s-platform:sshPublicKey": "ssh-ed25519 AAAAC3Nza e2e" },
      "k0s-platform:sshPrivateKey is missing",
    ],
  ])(
    "fails `up` on %s with the clear message and leaves the cluster as it was",
    async (_class, change, message) => {
      const good = engine.readStackConfig("local-staging");
      const before = await clusterSnapshot();
      engine.writeStackConfig("local-staging", { ...good, ...change });
      try {
        await expect(staging.up()).rejects.toThrow(message);
      } finally {
        engine.writeStackConfig("local-staging", good);
      }
      expect(await clusterSnapshot()).toEqual(before);
    },
    120_000,
  );
});

describe("editing a quota in config", () => {
  it("updates only that quota", async () => {
    const good = engine.readStackConfig("local-staging");
    const environments = good["k0s-platform:environments"] as { staging: { quota: Record<string, string> } };
    const before = await clusterSnapshot();
    engine.writeStackConfig("local-staging", {
      ...good,
      "k0s-platform:environments": { staging: { ...environments.staging, quota: { ...STAGING_QUOTA, pods: "25" } } },
    });
    const result = await staging.up();
    expect(result.summary.resourceChanges).toMatchObject({ update: 1 });
    expect(Object.keys(result.summary.resourceChanges ?? {}).sort()).toEqual(["same", "update"]);
    expect((await api().get("/api/v1/namespaces/staging/resourcequotas/environment-quota")).spec.hard.pods).toBe("25");
    const changed = (await clusterSnapshot()).filter((line) => !before.includes(line));
    expect(changed.map((line) => line.split(" ")[0])).toEqual(["staging/environment-quota"]);
  }, 120_000);
});

describe("pulumi destroy", () => {
  it("removes every object the stacks created and nothing else", async () => {
    const outsider = await api().request("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "made-by-hand" },
    });
    expect(outsider.status).toBe(201);
    for (const stack of [staging, dev]) expect((await stack.destroy()).summary.result).toBe("succeeded");

    // The e2e skips await logic for the Flux manifest, so its namespace may still be finalizing.
    await api().waitFor("flux-system to finish terminating", async () =>
      (await api().request("GET", "/api/v1/namespaces/flux-system")).status === 404 ? true : undefined,
    );
    const namespaces = (await api().list("/api/v1/namespaces")).map((ns) => ns.metadata.name);
    expect(namespaces).toContain("made-by-hand");
    expect(namespaces).not.toContain("dev");
    expect(namespaces).not.toContain("staging");
    const crds = (await api().list("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")).map((crd) => crd.metadata.name);
    expect(crds.filter((name) => name.endsWith(".toolkit.fluxcd.io"))).toEqual([]);
  }, 300_000);
});

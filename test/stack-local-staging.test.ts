import { beforeAll, describe, expect, it } from "vitest";
import { promiseOf } from "./mocks";
import { mockCloud } from "./lib/cloud";
import { expectEnvironment, expectExplicitProvider, expectValidAgainstSchemas, graphOf, inputsOf, TYPES } from "./lib/graph";
import { ProgramRun, runProgram } from "./lib/program";
import { seedStackConfig } from "./lib/seedStacks";

const DEV_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
let run: ProgramRun;

beforeAll(async () => {
  run = await runProgram("local-staging", seedStackConfig("local-staging"), mockCloud({ stackOutputs: { ageRecipient: DEV_RECIPIENT } }));
});

describe("local-staging stack (Pulumi.local-staging.yaml)", () => {
  it("adds only the staging environment to the cluster that dev bootstrapped", () => {
    expect(graphOf(run)).toEqual(
      [
        "k0s-platform:index:LocalCluster local",
        "pulumi:providers:kubernetes local-provider",
        "pulumi:pulumi:StackReference organization/k0s-platform/dev",
        "k0s-platform:index:EnvironmentNamespace staging",
        "kubernetes:core/v1:Namespace staging-namespace",
        "kubernetes:scheduling.k8s.io/v1:PriorityClass staging-priority",
        "kubernetes:core/v1:ResourceQuota staging-quota",
        "kubernetes:core/v1:LimitRange staging-limits",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy staging-deny-ingress",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy staging-allow-traefik",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy staging-allow-same-namespace",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy staging-deny-egress",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy staging-allow-dns",
        "kubernetes:core/v1:ServiceAccount staging-reconciler",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding staging-reconciler-binding",
        "k0s-platform:index:SopsAgeKey staging-sops-age",
        "kubernetes:core/v1:Secret staging-sops-age-secret",
      ].sort(),
    );
  });

  it("carries the remote staging quota and isolation", () => {
    expectEnvironment(run, {
      name: "staging",
      client: "acme",
      billingGroup: "enterprise",
      hosts: ["*.staging.localtest.me"],
      priority: -100,
      quota: { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", pods: "20" },
      isolated: true,
    });
  });

  it("applies every Kubernetes object through the explicit provider", () => expectExplicitProvider(run, "local-provider"));

  it("declares only objects the Kubernetes schemas accept", () => expectValidAgainstSchemas(run));

  it("exports the cluster's age recipient from the owner stack", async () => {
    expect((await promiseOf(run.outputs.ageRecipient as never)).value).toBe(DEV_RECIPIENT);
    expect((await promiseOf(run.outputs.namespaces as never)).value).toEqual(["staging"]);
  });

  it("opens exactly the declared egress, the metadata range left out, and nothing when isolation is off", async () => {
    const config = seedStackConfig("local-staging");
    const environments = config.environments as Record<string, Record<string, unknown>>;
    const egress = [
      { cidr: "203.0.113.10/32", ports: [5432] },
      { cidr: "0.0.0.0/0", ports: [443] },
    ];
    const declared = await runProgram(
      "local-staging",
      { ...config, environments: { staging: { ...environments.staging, egress } } },
      mockCloud({ stackOutputs: { ageRecipient: DEV_RECIPIENT } }),
    );
    expectEnvironment(declared, {
      name: "staging",
      client: "acme",
      billingGroup: "enterprise",
      hosts: ["*.staging.localtest.me"],
      priority: -100,
      quota: { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", pods: "20" },
      isolated: true,
      declaredEgress: true,
    });
    expect(inputsOf(declared, TYPES.policy, "staging-allow-declared-egress")).toEqual({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "allow-declared-egress", namespace: "staging" },
      spec: {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          { to: [{ ipBlock: { cidr: "203.0.113.10/32", except: [] } }], ports: [{ protocol: "TCP", port: 5432 }] },
          { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["169.254.0.0/16"] } }], ports: [{ protocol: "TCP", port: 443 }] },
        ],
      },
    });
    expectValidAgainstSchemas(declared);
  });
});

describe("local-staging before dev is up", () => {
  it("stops before declaring anything, naming the stack to bring up first", async () => {
    await expect(runProgram("local-staging", seedStackConfig("local-staging"), mockCloud({ stackOutputs: {} }))).rejects.toThrow(
      'k0s-platform:clusterOwnerStack is "dev", but that stack has no ageRecipient output yet: it installs Flux and the age key on this cluster, so bring it up first (`pulumi up --stack dev`)',
    );
  });
});

/**
 * Assertions shared by the per-stack graph tests: providers, parentage, secrecy and the real schemas.
 */
import { expect } from "vitest";
import { Registration, reveal } from "../mocks";
import { validateObject } from "./manifests";
import { ProgramRun } from "./program";

/** Every Kubernetes object the program applies (not providers, not the ConfigFile component). */
export function kubernetesObjects(run: ProgramRun): Registration[] {
  return run.registrations.filter(
    (entry) => entry.custom && entry.type.startsWith("kubernetes:") && entry.type !== "kubernetes:yaml:ConfigFile",
  );
}

/** `type name` of every registration, sorted, for exact graph comparisons. */
export function graphOf(run: ProgramRun): string[] {
  return run.registrations.map((entry) => `${entry.type} ${entry.name}`).sort();
}

/** The type of the registration's parent, read from its URN (`ParentType$Type`), or undefined at the root. */
export function parentTypeOf(run: ProgramRun, entry: Registration): string | undefined {
  const urn = run.urns.get(entry.id);
  if (urn === undefined) throw new Error(`no URN recorded for ${entry.type} ${entry.name}`);
  const chain = urn.split("::")[2].split("$");
  return chain.length > 1 ? chain[chain.length - 2] : undefined;
}

/** Every Kubernetes object goes through the named explicit provider, never a default one. */
export function expectExplicitProvider(run: ProgramRun, providerName: string): void {
  const objects = kubernetesObjects(run);
  expect(objects.length).toBeGreaterThan(0);
  for (const entry of objects) {
    expect(entry.provider, `${entry.type} ${entry.name}`).toMatch(
      new RegExp(`\\$pulumi:providers:kubernetes::${providerName}::mocked::pulumi:providers:kubernetes::${providerName}$`),
    );
  }
}

/** Validates every applied Kubernetes object against the Kubernetes and Flux OpenAPI schemas. */
export function expectValidAgainstSchemas(run: ProgramRun): void {
  for (const entry of kubernetesObjects(run)) {
    const object = reveal(entry.inputs) as Record<string, unknown>;
    expect(() => validateObject(object), `${entry.type} ${entry.name}`).not.toThrow();
  }
}

/** The revealed inputs of one registration. */
export function inputsOf(run: ProgramRun, type: string, name: string): Record<string, any> {
  return reveal(run.find(type, name).inputs) as Record<string, any>;
}

export const TYPES = {
  namespace: "kubernetes:core/v1:Namespace",
  quota: "kubernetes:core/v1:ResourceQuota",
  limitRange: "kubernetes:core/v1:LimitRange",
  policy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  secret: "kubernetes:core/v1:Secret",
  gitRepository: "kubernetes:source.toolkit.fluxcd.io/v1:GitRepository",
  kustomization: "kubernetes:kustomize.toolkit.fluxcd.io/v1:Kustomization",
  environment: "k0s-platform:index:EnvironmentNamespace",
  serviceAccount: "kubernetes:core/v1:ServiceAccount",
  roleBinding: "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
  priorityClass: "kubernetes:scheduling.k8s.io/v1:PriorityClass",
} as const;

/** The namespace, quota, limits and isolation of one environment, exactly as configured. */
export function expectEnvironment(
  run: ProgramRun,
  env: {
    name: string;
    client: string;
    billingGroup: string;
    hosts: string[];
    quota: Record<string, string>;
    isolated: boolean;
    declaredEgress?: boolean;
    /** Its PriorityClass's value; 0 unless the stack sets one. */
    priority?: number;
  },
): void {
  expect(inputsOf(run, TYPES.namespace, `${env.name}-namespace`).metadata).toEqual({
    name: env.name,
    labels: {
      environment: env.name,
      client: env.client,
      "billing-group": env.billingGroup,
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/enforce-version": "latest",
      "pod-security.kubernetes.io/warn": "restricted",
      "pod-security.kubernetes.io/audit": "restricted",
    },
    // The host names its Ingresses and Certificates may use, which the cluster's policy reads.
    annotations: { "k0s-platform/hosts": env.hosts.join(",") },
  });
  // Flux applies the environment's folder as this account, which holds `admin` here and nowhere else.
  expect(inputsOf(run, TYPES.serviceAccount, `${env.name}-reconciler`).metadata).toEqual({
    name: `tenant-${env.name}`,
    namespace: "flux-system",
  });
  // Its own age key, beside Flux, which its Kustomizations alone decrypt with.
  expect(inputsOf(run, TYPES.secret, `${env.name}-sops-age-secret`).metadata).toEqual({
    name: `sops-age-${env.name}`,
    namespace: "flux-system",
  });
  const bindings = run.ofType(TYPES.roleBinding).filter((entry) => entry.name.startsWith(`${env.name}-`));
  expect(bindings.map((entry) => entry.name)).toEqual([`${env.name}-reconciler-binding`]);
  expect(inputsOf(run, TYPES.roleBinding, `${env.name}-reconciler-binding`)).toMatchObject({
    metadata: { name: "flux-reconciler", namespace: env.name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
    subjects: [{ kind: "ServiceAccount", name: `tenant-${env.name}`, namespace: "flux-system" }],
  });
  // Its pods' priority, which the starter's overlays name; it never preempts anything.
  expect(inputsOf(run, TYPES.priorityClass, `${env.name}-priority`)).toMatchObject({
    metadata: { name: `environment-${env.name}` },
    value: env.priority ?? 0,
    preemptionPolicy: "Never",
  });
  const quota = inputsOf(run, TYPES.quota, `${env.name}-quota`);
  expect(quota.metadata).toEqual({ name: "environment-quota", namespace: env.name });
  expect(quota.spec).toEqual({ hard: env.quota });
  expect(inputsOf(run, TYPES.limitRange, `${env.name}-limits`).metadata.namespace).toBe(env.name);

  const policies = run.ofType(TYPES.policy).filter((entry) => entry.name.startsWith(`${env.name}-`));
  if (!env.isolated) {
    expect(policies).toEqual([]);
    return;
  }
  const spec = (role: string, name: string) => {
    const inputs = inputsOf(run, TYPES.policy, `${env.name}-${role}`);
    expect(inputs.metadata).toEqual({ name, namespace: env.name });
    return inputs.spec;
  };
  expect(policies.map((entry) => entry.name).sort()).toEqual(
    [
      "deny-ingress",
      "allow-traefik",
      "allow-same-namespace",
      "deny-egress",
      "allow-dns",
      ...(env.declaredEgress ? ["allow-declared-egress"] : []),
    ]
      .map((role) => `${env.name}-${role}`)
      .sort(),
  );
  expect(spec("deny-ingress", "default-deny-ingress")).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });
  expect(spec("allow-traefik", "allow-traefik-ingress")).toEqual({
    podSelector: {},
    policyTypes: ["Ingress"],
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "traefik" } } }] }],
  });
  expect(spec("allow-same-namespace", "allow-same-namespace")).toEqual({
    podSelector: {},
    policyTypes: ["Ingress", "Egress"],
    ingress: [{ from: [{ podSelector: {} }] }],
    egress: [{ to: [{ podSelector: {} }] }],
  });
  expect(spec("deny-egress", "default-deny-egress")).toEqual({ podSelector: {}, policyTypes: ["Egress"] });
  expect(spec("allow-dns", "allow-dns-egress")).toEqual({
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [
      {
        to: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
            podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
          },
        ],
        ports: [
          { protocol: "UDP", port: 53 },
          { protocol: "TCP", port: 53 },
        ],
      },
    ],
  });
  // Every object under the environment's component: its age key's Secret through the key's own.
  expect(parentTypeOf(run, run.find("k0s-platform:index:SopsAgeKey", `${env.name}-sops-age`))).toBe(TYPES.environment);
  for (const entry of run.registrations.filter((candidate) => candidate.name.startsWith(`${env.name}-`) && candidate.custom)) {
    const expected = entry.name === `${env.name}-sops-age-secret` ? "k0s-platform:index:SopsAgeKey" : TYPES.environment;
    expect(parentTypeOf(run, entry), entry.name).toBe(expected);
  }
}

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { environmentSopsSecret, tenantServiceAccount } from "./lib/flux";
import { HOSTS_ANNOTATION } from "./lib/hostNames";
import { SopsAgeKey, type AgeKeyOptions } from "./sopsAgeKey";
import { environmentPriorityClass } from "./lib/environmentConfig";
import { containerDefaults } from "./lib/quota";

/**
 * The namespace Traefik runs in; isolated environments admit ingress from it alone.
 * See gitops/infrastructure/base.
 */
export const TRAEFIK_NAMESPACE = "traefik";

/**
 * Pod Security admission at `restricted` (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
 * no privileged, hostPath, host-namespace or root containers in any environment, whoever applies them.
 * `latest` follows the cluster's version, so an upgrade tightens rather than freezes the profile;
 * warn and audit name violations of an apply that would pass today.
 */
export const POD_SECURITY_LABELS = {
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
  "pod-security.kubernetes.io/warn": "restricted",
  "pod-security.kubernetes.io/audit": "restricted",
} as const;

/** How the cluster's DNS pods are labelled (CoreDNS in kube-system, as k0s deploys it). */
export const CLUSTER_DNS_LABELS = { "k8s-app": "kube-dns" } as const;

/** Egress an environment declares: TCP to `cidr` minus `except` (on `ports`, or every port if none). */
export interface EgressRule {
  readonly cidr: string;
  readonly except: readonly string[];
  readonly ports: readonly number[];
}

/** Label keys used for billing and `kubectl get ns -l billing-group=...`. */
export const LABELS = {
  environment: "environment",
  client: "client",
  billingGroup: "billing-group",
} as const;

export interface EnvironmentNamespaceArgs {
  /** Namespace name, also the `environment` label value. Set exactly: no auto-naming suffix. */
  readonly namespace: string;
  /** The `client` label value. */
  readonly client: string;
  /** The `billing-group` label value. */
  readonly billingGroup: string;
  /** ResourceQuota `spec.hard`. Empty declares no quota and no LimitRange. */
  readonly quota: Readonly<Record<string, string>>;
  /**
   * Declares `default-deny-ingress`, `allow-traefik-ingress`, `allow-same-namespace`,
   * `default-deny-egress`, `allow-dns-egress` and any `allow-declared-egress`, so other environments
   * cannot reach this one and its pods reach only DNS, each other and what is declared. Plain boolean:
   * it decides which resources exist. Defaults to true.
   */
  readonly networkIsolation?: boolean;
  /**
   * Egress the environment's pods need beyond DNS and their own namespace (an external database, an
   * API); applies with networkIsolation only. Config validation carves the metadata range out.
   */
  readonly allowedEgress?: readonly EgressRule[];
  /**
   * The host names its Ingresses and Certificates may use (patterns, see lib/hostNames.ts), written on
   * the namespace for the cluster's HostNamePolicy to enforce. None if empty.
   */
  readonly hosts?: readonly string[];
  /**
   * Flux's namespace. The environment's Kustomizations reconcile as a service account there
   * (tenantServiceAccount), bound to `admin` in this namespace alone, so a commit to the environment's
   * folder can change nothing outside it; the environment's age key lives there too.
   */
  readonly fluxNamespace: pulumi.Input<string>;
  /** The value of the environment's PriorityClass (environmentPriorityClass); defaults to 0. */
  readonly priority?: number;
  /** The environment's age key: its generation, and an imported identity; defaults to one generated. */
  readonly ageKey?: AgeKeyOptions;
}

/**
 * One environment (dev, staging, production…) as a namespace with billing labels, Pod Security
 * `restricted`, the host names it may serve, a quota, container defaults that keep the quota usable, ingress isolation, and the
 * service account Flux applies the environment's folder as, and the age key its secrets decrypt with.
 */
export class EnvironmentNamespace extends pulumi.ComponentResource {
  /** The namespace name, known once the namespace exists. */
  public readonly namespaceName: pulumi.Output<string>;
  /** The environment's age recipient: its `.sops.yaml` rule encrypts to it. */
  public readonly ageRecipient: pulumi.Output<string>;

  constructor(name: string, args: EnvironmentNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:EnvironmentNamespace", name, {}, opts);

    const namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: args.namespace,
          labels: {
            [LABELS.environment]: args.namespace,
            [LABELS.client]: args.client,
            [LABELS.billingGroup]: args.billingGroup,
            ...POD_SECURITY_LABELS,
          },
          annotations: { [HOSTS_ANNOTATION]: (args.hosts ?? []).join(",") },
        },
      },
      { parent: this },
    );
    this.namespaceName = namespace.metadata.name;
    const inNamespace = (resourceName: string) => ({ name: resourceName, namespace: this.namespaceName });

    const reconciler = new k8s.core.v1.ServiceAccount(
      `${name}-reconciler`,
      { metadata: { name: tenantServiceAccount(args.namespace), namespace: args.fluxNamespace } },
      { parent: this },
    );
    this.ageRecipient = new SopsAgeKey(
      `${name}-sops-age`,
      { namespace: args.fluxNamespace, secretName: environmentSopsSecret(args.namespace), key: args.ageKey },
      { parent: this },
    ).recipient;

    // `admin` is Kubernetes' namespace owner role: everything in the namespace, its Roles and
    // RoleBindings included (never more than admin itself holds), and nothing cluster-wide.
    new k8s.rbac.v1.RoleBinding(
      `${name}-reconciler-binding`,
      {
        metadata: inNamespace("flux-reconciler"),
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
        subjects: [{ kind: "ServiceAccount", name: reconciler.metadata.name, namespace: reconciler.metadata.namespace }],
      },
      { parent: this },
    );

    // Never preempts: a higher class must not evict the platform's pods or another environment's
    // running ones to make room; its value only orders the kubelet's evictions under node pressure
    // and the scheduler's queue.
    new k8s.scheduling.v1.PriorityClass(
      `${name}-priority`,
      {
        metadata: { name: environmentPriorityClass(args.namespace) },
        value: args.priority ?? 0,
        preemptionPolicy: "Never",
        description: `Pods of the ${args.namespace} environment: under node pressure, lower values are evicted first.`,
      },
      { parent: this },
    );

    if (Object.keys(args.quota).length > 0) {
      new k8s.core.v1.ResourceQuota(
        `${name}-quota`,
        { metadata: inNamespace("environment-quota"), spec: { hard: { ...args.quota } } },
        { parent: this },
      );
    }

    const defaults = containerDefaults(args.quota);
    if (defaults !== undefined) {
      new k8s.core.v1.LimitRange(
        `${name}-limits`,
        {
          metadata: inNamespace("container-defaults"),
          spec: { limits: [{ type: "Container", defaultRequest: { ...defaults.defaultRequest }, default: { ...defaults.default } }] },
        },
        { parent: this },
      );
    }

    if (args.networkIsolation ?? true) {
      const policy = (role: string, policyName: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
        new k8s.networking.v1.NetworkPolicy(`${name}-${role}`, { metadata: inNamespace(policyName), spec }, { parent: this });

      // An empty podSelector selects every pod; listing Ingress with no rules denies all of it.
      policy("deny-ingress", "default-deny-ingress", { podSelector: {}, policyTypes: ["Ingress"] });
      policy("allow-traefik", "allow-traefik-ingress", {
        podSelector: {},
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": TRAEFIK_NAMESPACE } } }] }],
      });
      // Without this, an app's own pods (web -> api -> cache) could not talk to each other.
      policy("allow-same-namespace", "allow-same-namespace", {
        podSelector: {},
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [{ podSelector: {} }] }],
        egress: [{ to: [{ podSelector: {} }] }],
      });

      // Egress is denied too: a compromised pod must not reach the API server, the kubelet, the
      // cloud's metadata address (credentials, user data), another environment, or the internet.
      // Policies add up, so what is allowed is exactly DNS, the namespace itself and what is declared.
      policy("deny-egress", "default-deny-egress", { podSelector: {}, policyTypes: ["Egress"] });
      policy("allow-dns", "allow-dns-egress", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            to: [
              {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
                podSelector: { matchLabels: CLUSTER_DNS_LABELS },
              },
            ],
            ports: [
              { protocol: "UDP", port: 53 },
              { protocol: "TCP", port: 53 },
            ],
          },
        ],
      });
      const declared = args.allowedEgress ?? [];
      if (declared.length > 0) {
        policy("allow-declared-egress", "allow-declared-egress", {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: declared.map((rule) => ({
            to: [{ ipBlock: { cidr: rule.cidr, except: [...rule.except] } }],
            ...(rule.ports.length === 0 ? {} : { ports: rule.ports.map((port) => ({ protocol: "TCP", port })) }),
          })),
        });
      }
    }

    this.registerOutputs({ namespaceName: this.namespaceName, ageRecipient: this.ageRecipient });
  }
}

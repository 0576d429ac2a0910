import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { containerDefaults } from "./lib/quota";

/**
 * The namespace Traefik runs in; isolated environments admit ingress from it alone.
 * See gitops/infrastructure/base.
 */
export const TRAEFIK_NAMESPACE = "traefik";

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
   * Declares `default-deny-ingress`, `allow-traefik-ingress` and `allow-same-namespace`, so other
   * environments on the cluster cannot reach this one. Plain boolean: it decides which resources exist.
   * Defaults to true.
   */
  readonly networkIsolation?: boolean;
}

/**
 * One environment (dev, staging, production…) as a namespace with billing labels, a quota, container
 * defaults that keep the quota usable, and ingress isolation.
 */
export class EnvironmentNamespace extends pulumi.ComponentResource {
  /** The namespace name, known once the namespace exists. */
  public readonly namespaceName: pulumi.Output<string>;

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
          },
        },
      },
      { parent: this },
    );
    this.namespaceName = namespace.metadata.name;
    const inNamespace = (resourceName: string) => ({ name: resourceName, namespace: this.namespaceName });

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
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: {} }] }],
      });
    }

    this.registerOutputs({ namespaceName: this.namespaceName });
  }
}

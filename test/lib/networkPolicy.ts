/**
 * A small evaluator of NetworkPolicy ingress semantics for namespaces: enough to answer "can a pod in
 * namespace A reach a pod in namespace B", the question isolation exists to settle.
 */
interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: unknown[];
}

interface Policy {
  metadata: { namespace: string };
  spec: {
    podSelector: LabelSelector;
    policyTypes?: string[];
    ingress?: { from?: { namespaceSelector?: LabelSelector; podSelector?: LabelSelector; ipBlock?: unknown }[] }[];
  };
}

function matches(selector: LabelSelector, labels: Record<string, string>): boolean {
  if (selector.matchExpressions?.length) throw new Error("matchExpressions are not evaluated here");
  return Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
}

/**
 * Whether traffic from any pod in `from` reaches every pod in `to`. Pods are unlabelled, so a
 * podSelector only matters through whether it is empty.
 */
export function admitsIngress(policies: readonly Policy[], { from, to }: { from: string; to: string }): boolean {
  const applying = policies.filter(
    (policy) =>
      policy.metadata.namespace === to &&
      matches(policy.spec.podSelector, {}) &&
      (policy.spec.policyTypes ?? ["Ingress"]).includes("Ingress"),
  );
  if (applying.length === 0) return true;
  const sourceNamespaceLabels = { "kubernetes.io/metadata.name": from };
  return applying.some((policy) =>
    (policy.spec.ingress ?? []).some(
      (rule) =>
        rule.from === undefined ||
        rule.from.some((peer) => {
          if (peer.ipBlock !== undefined) return false;
          const namespaceOk = peer.namespaceSelector === undefined ? from === to : matches(peer.namespaceSelector, sourceNamespaceLabels);
          return namespaceOk && matches(peer.podSelector ?? {}, {});
        }),
    ),
  );
}

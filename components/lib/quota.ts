/**
 * ResourceQuota keys and the LimitRange defaults derived from them. Pure: creates no resources.
 */
import { parseQuantity } from "./validation";

/** `spec.hard` keys of a ResourceQuota, as the quota admission controller understands them. */
const COMPUTE_KEYS = [
  "cpu",
  "memory",
  "ephemeral-storage",
  "requests.cpu",
  "requests.memory",
  "requests.ephemeral-storage",
  "requests.storage",
  "limits.cpu",
  "limits.memory",
  "limits.ephemeral-storage",
] as const;

const OBJECT_COUNT_KEYS = [
  "pods",
  "services",
  "services.nodeports",
  "services.loadbalancers",
  "secrets",
  "configmaps",
  "persistentvolumeclaims",
  "replicationcontrollers",
  "resourcequotas",
] as const;

/** `count/<resource>[.<group>]`, `<class>.storageclass.storage.k8s.io/...` and extended resources. */
const PATTERN_KEYS = [
  /^count\/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$/,
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.storageclass\.storage\.k8s\.io\/(requests\.storage|persistentvolumeclaims)$/,
  /^(requests|limits)\.hugepages-[0-9]+(Ki|Mi|Gi)$/,
  /^requests\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/,
];

const isCountKey = (key: string): boolean =>
  (OBJECT_COUNT_KEYS as readonly string[]).includes(key) || key.startsWith("count/") || key.endsWith("persistentvolumeclaims");

export function isQuotaKey(key: string): boolean {
  return (
    (COMPUTE_KEYS as readonly string[]).includes(key) ||
    (OBJECT_COUNT_KEYS as readonly string[]).includes(key) ||
    PATTERN_KEYS.some((pattern) => pattern.test(key))
  );
}

/** The pairs where a request above its limit leaves a quota no pod can satisfy. */
const REQUEST_LIMIT_PAIRS = [
  ["requests.cpu", "limits.cpu"],
  ["requests.memory", "limits.memory"],
  ["requests.ephemeral-storage", "limits.ephemeral-storage"],
] as const;

/**
 * Checks a quota's `spec.hard`. Returns one message per problem, each naming the key and value;
 * `path` prefixes every message so the user sees where in the stack config it sits.
 */
export function quotaErrors(path: string, hard: Readonly<Record<string, string>>): string[] {
  const errors: string[] = [];
  for (const [key, value] of Object.entries(hard)) {
    if (!isQuotaKey(key)) {
      errors.push(
        `${path}: "${key}" is not a ResourceQuota resource; use keys such as requests.cpu, requests.memory, limits.cpu, limits.memory, pods or count/<resource>`,
      );
      continue;
    }
    const quantity = typeof value === "string" ? parseQuantity(value) : undefined;
    if (quantity === undefined || quantity < 0) {
      errors.push(`${path}.${key}: "${String(value)}" is not a Kubernetes quantity; write it as a string such as "500m", "2", "1Gi"`);
    } else if (isCountKey(key) && !Number.isInteger(quantity)) {
      errors.push(`${path}.${key}: "${value}" must be a whole number of objects`);
    }
  }
  for (const [request, limit] of REQUEST_LIMIT_PAIRS) {
    const requested = hard[request] === undefined ? undefined : parseQuantity(hard[request]);
    const limited = hard[limit] === undefined ? undefined : parseQuantity(hard[limit]);
    if (requested !== undefined && limited !== undefined && requested > limited) {
      errors.push(`${path}.${request}: "${hard[request]}" is above ${limit} "${hard[limit]}"; requests cannot exceed limits`);
    }
  }
  return errors;
}

/** Container defaults applied by the LimitRange, capped by the quota so one pod always fits. */
export interface ContainerDefaults {
  readonly defaultRequest: Readonly<Record<"cpu" | "memory", string>>;
  readonly default: Readonly<Record<"cpu" | "memory", string>>;
}

const BASELINE_REQUEST = { cpu: "100m", memory: "128Mi" } as const;
const BASELINE_LIMIT = { cpu: "500m", memory: "512Mi" } as const;

/**
 * A namespace whose quota covers cpu or memory rejects every pod that does not state them, so the
 * LimitRange fills them in. Returns undefined when the quota does not constrain cpu or memory.
 */
export function containerDefaults(hard: Readonly<Record<string, string>>): ContainerDefaults | undefined {
  const constrains = (resource: "cpu" | "memory"): boolean =>
    [resource, `requests.${resource}`, `limits.${resource}`].some((key) => hard[key] !== undefined);
  if (!constrains("cpu") && !constrains("memory")) return undefined;

  const smallest = (...values: (string | undefined)[]): string =>
    values
      .filter((value): value is string => value !== undefined)
      .reduce((a, b) => ((parseQuantity(b) ?? Infinity) < (parseQuantity(a) ?? Infinity) ? b : a));
  const limitFor = (resource: "cpu" | "memory"): string => smallest(BASELINE_LIMIT[resource], hard[`limits.${resource}`]);
  const requestFor = (resource: "cpu" | "memory"): string =>
    smallest(BASELINE_REQUEST[resource], hard[`requests.${resource}`], hard[resource], limitFor(resource));
  return {
    defaultRequest: { cpu: requestFor("cpu"), memory: requestFor("memory") },
    default: { cpu: limitFor("cpu"), memory: limitFor("memory") },
  };
}

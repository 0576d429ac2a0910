/** The `environments` map of the stack config, validated (see components/config.ts). */
import type { EgressRule } from "../environmentNamespace";
import { asBoolean, asInteger, asObject, asString, asStringMap, ConfigErrors, fail } from "./configReader";
import { PROJECT } from "./configDefaults";
import { parseClientRepository, type ClientRepositoryConfig } from "./fluxConfig";
import { hostPatternError, hostPatternsOverlap } from "./hostNames";
import { quotaErrors } from "./quota";
import { dns1123LabelError, egressCidrError, egressExcept, labelValueError } from "./validation";

/** Namespaces the platform itself or Kubernetes owns; an environment must never take one over. */
const RESERVED_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease", "flux-system", "traefik"];

const ENVIRONMENT_KEYS = ["client", "billingGroup", "quota", "networkIsolation", "egress", "hosts", "protect", "priority", "repository"];
/**
 * The bounds of an environment's priority: the platform's own pods (Traefik, Flux, monitoring) run
 * at 0, and Kubernetes keeps everything above 1e9 for its system classes.
 */
export const PRIORITY_RANGE = { min: -1_000_000, max: 1_000_000 } as const;

/** The PriorityClass an environment's pods name (the starter's overlays set it on every Deployment). */
export function environmentPriorityClass(environment: string): string {
  return `environment-${environment}`;
}

/** One environment = one namespace on the stack's cluster. */
export interface EnvironmentConfig {
  /** Namespace name, also the `environment` label. */
  readonly name: string;
  readonly client: string;
  readonly billingGroup: string;
  /** ResourceQuota `spec.hard`; empty means no quota. */
  readonly quota: Readonly<Record<string, string>>;
  readonly networkIsolation: boolean;
  /** What its pods may reach beyond DNS and their own namespace (the metadata range left out). */
  readonly allowedEgress: readonly EgressRule[];
  /** The host names its routes and certificates may use (components/lib/hostNames.ts); none if empty. */
  readonly hosts: readonly string[];
  /** Whether `pulumi destroy` must refuse to delete the namespace. */
  readonly protect: boolean;
  /**
   * Its pods' priority (its PriorityClass's value): under node pressure the kubelet evicts lower
   * first, so a soaking staging (below 0) gives way to production and the platform (0).
   */
  readonly priority: number;
  /** The client's own GitOps repository, which Flux applies into this namespace alone; none, the platform's. */
  readonly repository?: ClientRepositoryConfig;
}

/**
 * `repositoryTokens` holds each client repository's token (a secret, apart from `environments`, which
 * stays readable): by environment.
 */
export function parseEnvironments(
  errors: ConfigErrors,
  rawValue: string | undefined,
  repositoryTokens: Readonly<Record<string, string>> = {},
): EnvironmentConfig[] {
  const map = asObject(
    errors,
    "environments",
    rawValue,
    "a map from namespace name to { client, billingGroup, quota?, networkIsolation?, egress?, hosts?, protect?, priority?, repository? }",
  );
  if (map === undefined) return [];
  if (Object.keys(map).length === 0) errors.add("environments", "must declare at least one environment");
  const environments = Object.entries(map).map(([name, value]): EnvironmentConfig => {
    const path = `environments.${name}`;
    const nameProblem = dns1123LabelError(name);
    if (nameProblem) fail(errors, "environments", name, `is not a valid namespace name: ${nameProblem}`);
    if (RESERVED_NAMESPACES.includes(name))
      fail(errors, "environments", name, `is reserved; choose a namespace other than ${RESERVED_NAMESPACES.join(", ")}`);
    const entry =
      asObject(
        errors,
        path,
        value,
        "an object { client, billingGroup, quota?, networkIsolation?, egress?, hosts?, protect?, priority?, repository? }",
      ) ?? {};
    for (const key of Object.keys(entry)) {
      if (!ENVIRONMENT_KEYS.includes(key))
        errors.add(`${path}.${key}`, `is not an environment setting; allowed: ${ENVIRONMENT_KEYS.join(", ")}`);
    }
    const label = (key: "client" | "billingGroup"): string => {
      const labelValue = asString(errors, `${path}.${key}`, entry[key]);
      if (labelValue === undefined || labelValue === "") {
        errors.add(`${path}.${key}`, "is required (it becomes a namespace label used for billing)");
        return "";
      }
      const problem = labelValueError(labelValue);
      if (problem) fail(errors, `${path}.${key}`, labelValue, problem);
      return labelValue;
    };
    const quota = asStringMap(errors, `${path}.quota`, entry.quota) ?? {};
    for (const problem of quotaErrors(`${PROJECT}:${path}.quota`, quota)) errors.addRaw(problem);
    return {
      name,
      client: label("client"),
      billingGroup: label("billingGroup"),
      quota,
      networkIsolation: asBoolean(errors, `${path}.networkIsolation`, entry.networkIsolation) ?? true,
      allowedEgress: parseEgress(errors, `${path}.egress`, entry.egress),
      hosts: parseHosts(errors, `${path}.hosts`, entry.hosts),
      protect: asBoolean(errors, `${path}.protect`, entry.protect) ?? false,
      priority: parsePriority(errors, `${path}.priority`, entry.priority),
      repository: parseClientRepository(errors, name, entry.repository, repositoryTokens[name] ?? ""),
    };
  });
  for (const environment of Object.keys(repositoryTokens).filter((name) => !(name in map))) {
    errors.add(`repositoryTokens.${environment}`, "names no environment of this stack");
  }
  // One host name, one namespace: otherwise staging could serve (and get certificates for) production's.
  for (const [index, environment] of environments.entries()) {
    for (const other of environments.slice(index + 1)) {
      for (const pattern of environment.hosts) {
        const clash = other.hosts.find((otherPattern) => hostPatternsOverlap(pattern, otherPattern));
        if (clash !== undefined) {
          fail(
            errors,
            `environments.${environment.name}.hosts`,
            pattern,
            `overlaps ${clash} of environments.${other.name}.hosts: a host name must belong to one environment only`,
          );
        }
      }
    }
  }
  return environments;
}

const HOSTS_SHAPE = 'a list of host names or one-label wildcards, such as ["*.staging.example.com", "shop.example.org"]';

function parseHosts(errors: ConfigErrors, path: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    errors.refuse(path, JSON.stringify(value), `must be ${HOSTS_SHAPE}`);
    return [];
  }
  const patterns = value as string[];
  for (const [index, pattern] of patterns.entries()) {
    const problem = hostPatternError(pattern);
    if (problem) fail(errors, `${path}[${index}]`, pattern, problem);
  }
  return patterns;
}

const EGRESS_SHAPE = 'a list such as [{ cidr: "203.0.113.10/32", ports: [5432] }] (ports optional: every TCP port)';

function parseEgress(errors: ConfigErrors, path: string, value: unknown): EgressRule[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    errors.refuse(path, JSON.stringify(value), `must be ${EGRESS_SHAPE}`);
    return [];
  }
  return value.flatMap((item: unknown, index) => {
    const at = `${path}[${index}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      errors.refuse(at, JSON.stringify(item), `must be { cidr, ports? }, in ${EGRESS_SHAPE}`);
      return [];
    }
    const entry = item as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (key !== "cidr" && key !== "ports") errors.add(`${at}.${key}`, "is not an egress setting; allowed: cidr, ports");
    }
    const cidr = asString(errors, `${at}.cidr`, entry.cidr);
    if (cidr === undefined) {
      errors.add(`${at}.cidr`, `is required, in ${EGRESS_SHAPE}`);
      return [];
    }
    const problem = egressCidrError(cidr);
    if (problem) fail(errors, `${at}.cidr`, cidr, problem);
    // `pulumi config set --path ...ports[0] 5432` stores a string; a stack file's YAML, a number.
    const given = entry.ports ?? [];
    const ports = Array.isArray(given)
      ? (given as unknown[]).map((port) => (typeof port === "string" && /^[0-9]+$/.test(port) ? Number(port) : port))
      : [];
    const valid =
      Array.isArray(given) && ports.every((port) => Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535);
    if (!valid) errors.refuse(`${at}.ports`, JSON.stringify(given), "must be a list of TCP ports from 1 to 65535");
    if (problem || !valid) return [];
    return [{ cidr, except: egressExcept(cidr), ports: ports as number[] }];
  });
}

function parsePriority(errors: ConfigErrors, key: string, value: unknown): number {
  const priority = asInteger(errors, key, value) ?? 0;
  if (priority < PRIORITY_RANGE.min || priority > PRIORITY_RANGE.max) {
    errors.refuse(
      key,
      String(priority),
      `must be between ${PRIORITY_RANGE.min} and ${PRIORITY_RANGE.max}: the platform's own pods run at 0, Kubernetes' system classes far above`,
    );
  }
  return priority;
}

/**
 * Host names bound to namespaces. Each environment declares the host names its routes and
 * certificates may use; the program writes them on its namespace, and an admission policy the API
 * server enforces (components/hostNamePolicy.ts) refuses any other. A pattern is a DNS name or a
 * wildcard `*.` followed by one, matching exactly one label in front, as a TLS wildcard does: so
 * production's `*.example.com` and staging's `*.staging.example.com` never match the same name.
 */
import { domainError } from "./validation";

/** The namespace annotation that holds an environment's host patterns, comma-separated. */
export const HOSTS_ANNOTATION = "k0s-platform/hosts";

/**
 * cert-manager's controller, as gitops/infrastructure/base/controllers/cert-manager installs it
 * (release cert-manager in namespace cert-manager): the one creator of CertificateRequests.
 */
export const CERT_MANAGER_CONTROLLER = "system:serviceaccount:cert-manager:cert-manager";

export function hostPatternError(pattern: string): string | undefined {
  const name = pattern.startsWith("*.") ? pattern.slice(2) : pattern;
  if (name.includes("*")) return "may hold a wildcard only as its whole first label, as in *.staging.example.com";
  const problem = domainError(name);
  if (problem) return `${problem}, optionally after "*." for every name one label under it`;
  return undefined;
}

/** Whether `pattern` covers `host` (itself a DNS name, or a wildcard as an Ingress may declare). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (!pattern.startsWith("*.")) return false;
  const suffix = pattern.slice(1);
  const label = host.slice(0, host.length - suffix.length);
  return host.endsWith(suffix) && label !== "" && !label.includes(".");
}

/** Whether some host name would match both patterns: then two namespaces could claim it. */
export function hostPatternsOverlap(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/**
 * Names the program gives things outside the stack's state, derived from the stack, and which of the
 * environments' host names its DNS records cover. Pure.
 */
import { ConfigErrors, fail } from "./configReader";

/**
 * What a stack's droplet, firewall, SSH key and tags are called in the DigitalOcean account:
 * `<project>-<stack>`, so two stacks (two clients) in one account never collide. Lowercased, with
 * anything but letters, digits and hyphens made a hyphen: a droplet name is a host name, and tags
 * take no dots.
 */
export function cloudName(project: string, stack: string): string {
  return `${project}-${stack}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * The DNS records (relative to `domain`) that point the environments' host names at the cluster:
 * `*.staging` for `*.staging.example.com`, `*` for `*.example.com`, `@` for the domain itself. Host
 * names outside the domain get no record (their DNS is elsewhere).
 */
export function dnsRecords(domain: string, hostPatterns: readonly string[]): string[] {
  const records = hostPatterns.flatMap((pattern) => {
    if (pattern === domain) return ["@"];
    return pattern.endsWith(`.${domain}`) ? [pattern.slice(0, -(domain.length + 1))] : [];
  });
  return [...new Set(records)];
}

/** The seed stacks' placeholder domains (reserved for documentation, RFC 2606): nobody's real names. */
const PLACEHOLDER = /(^|\.)example\.(com|net|org)$/;

interface HostsOf {
  readonly name: string;
  readonly hosts: readonly string[];
}

/** Each environment's host patterns that `domain` does not cover, with their config keys. */
function outside(domain: string, environments: readonly HostsOf[]): { key: string; pattern: string }[] {
  return environments.flatMap((environment) =>
    environment.hosts.flatMap((pattern, index) =>
      dnsRecords(domain, [pattern]).length > 0 ? [] : [{ key: `environments.${environment.name}.hosts[${index}]`, pattern }],
    ),
  );
}

/**
 * Refuses host patterns still on the seed's placeholder domain while the stack sets its own `domain`:
 * they would get no DNS record and no certificate, so the environment would serve nothing, silently.
 * Each message names the pattern under `domain` it was probably meant to be.
 */
export function placeholderHostErrors(errors: ConfigErrors, domain: string, environments: readonly HostsOf[]): void {
  if (PLACEHOLDER.test(domain)) return;
  for (const { key, pattern } of outside(domain, environments).filter((entry) => PLACEHOLDER.test(entry.pattern))) {
    const meant = pattern.replace(PLACEHOLDER, `$1${domain}`);
    fail(
      errors,
      key,
      pattern,
      `is still the seed's placeholder, outside domain ${domain}, so it would get no DNS record and no certificate; use ${meant}`,
    );
  }
}

/**
 * Why the environments' host names would get no DNS record on this stack, or undefined: `domain`
 * makes records only for the host patterns under it, and the patterns outside it are legitimate (a
 * name whose DNS is managed elsewhere) but easy to leave by mistake. A warning, not a refusal.
 */
export function domainWarning(domain: string | undefined, environments: readonly HostsOf[]): string | undefined {
  const all = environments.flatMap((environment) => environment.hosts);
  if (domain === undefined) {
    const placeholders = all.filter((pattern) => PLACEHOLDER.test(pattern));
    if (placeholders.length === 0) return undefined;
    return (
      `the environments' hosts ${placeholders.join(", ")} are the seed's placeholder names, which no DNS resolves to this cluster and Let's Encrypt refuses: ` +
      `set domain to your DigitalOcean-managed domain and each environment's hosts under it`
    );
  }
  if (all.length === 0) {
    return `domain ${domain} is set, but no environment lists hosts, so no DNS record is created: set environments.<env>.hosts under ${domain}`;
  }
  const missed = outside(domain, environments);
  if (missed.length === 0) return undefined;
  return (
    `domain ${domain} does not cover ${missed.map(({ key, pattern }) => `${key} (${pattern})`).join(", ")}, so this stack makes no DNS record there: ` +
    `point those names at the stack output publicIp where their DNS is managed, or move them under ${domain}`
  );
}

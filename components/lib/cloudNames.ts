/**
 * Names the program gives things outside the stack's state, derived from the stack. Pure.
 */

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

/**
 * Whether a droplet can hold what its environments' quotas let them request. Pure: creates nothing.
 */
import { parseQuantity } from "./validation";

const GI = 2 ** 30;
const MI = 2 ** 20;

/** CPU in cores and memory in bytes. */
export interface Resources {
  readonly cpu: number;
  readonly memory: number;
}

/** What k0s's control plane, the kubelet, containerd and the OS hold outside any pod. */
export const HOST_RESERVED: Resources = { cpu: 0, memory: 1 * GI };

/**
 * What the platform's own pods request, every environment aside: k0s's CoreDNS, kube-router and
 * metrics-server, Flux's controllers, and the starter's Traefik, cert-manager and monitoring
 * (test/gitops.test.ts checks this covers what the starter's manifests request).
 */
export const PLATFORM_REQUESTS: Resources = { cpu: 1, memory: 1 * GI };

/** vCPUs and memory as a DigitalOcean size slug names them (s-2vcpu-4gb, g-4vcpu-16gb, s-1vcpu-512mb-10gb). */
export function dropletResources(slug: string): Resources | undefined {
  const match = /-(\d+)vcpu-(\d+)(gb|mb)(?:-|$)/.exec(slug);
  if (match === null) return undefined;
  return { cpu: Number(match[1]), memory: Number(match[2]) * (match[3] === "gb" ? GI : MI) };
}

/** What an environment's quota lets its pods request: `requests.cpu` (or `cpu`) and `requests.memory` (or `memory`). */
function quotaRequests(quota: Readonly<Record<string, string>>): Partial<Resources> {
  const read = (key: string, alias: string) => {
    const value = quota[key] ?? quota[alias];
    return value === undefined ? undefined : parseQuantity(value);
  };
  return { cpu: read("requests.cpu", "cpu"), memory: read("requests.memory", "memory") };
}

const cores = (cpu: number) => `${Number(cpu.toFixed(2))} CPU`;
const gibibytes = (memory: number) => `${Number((memory / GI).toFixed(2))}Gi`;

/**
 * A warning when the environments' quotas together let their pods request more CPU or memory than the
 * droplet has beside the platform: the quota would admit pods the node can never schedule (Pending).
 * Undefined when they fit, or when the slug does not name its size.
 */
export function capacityWarning(
  dropletSize: string,
  environments: readonly { readonly name: string; readonly quota: Readonly<Record<string, string>> }[],
): string | undefined {
  const droplet = dropletResources(dropletSize);
  if (droplet === undefined) return undefined;
  const forPods = {
    cpu: droplet.cpu - HOST_RESERVED.cpu - PLATFORM_REQUESTS.cpu,
    memory: droplet.memory - HOST_RESERVED.memory - PLATFORM_REQUESTS.memory,
  };
  const each = environments.map((environment) => ({ name: environment.name, ...quotaRequests(environment.quota) }));
  const total = {
    cpu: each.reduce((sum, environment) => sum + (environment.cpu ?? 0), 0),
    memory: each.reduce((sum, environment) => sum + (environment.memory ?? 0), 0),
  };
  if (total.cpu <= forPods.cpu && total.memory <= forPods.memory) return undefined;
  const listed = each
    .map((environment) => `${environment.name} ${cores(environment.cpu ?? 0)}/${gibibytes(environment.memory ?? 0)}`)
    .join(", ");
  return (
    `the environments' quotas let their pods request ${cores(total.cpu)} and ${gibibytes(total.memory)} (${listed}), ` +
    `but droplet ${dropletSize} has ${cores(Math.max(forPods.cpu, 0))} and ${gibibytes(Math.max(forPods.memory, 0))} for them ` +
    `once k0s, the OS and the platform's own pods have theirs: pods beyond that stay Pending. ` +
    `Choose a larger dropletSize or lower the quotas' requests.`
  );
}

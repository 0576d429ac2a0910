/**
 * Pure validators for the values Kubernetes and DigitalOcean would otherwise reject late, halfway
 * through an update. Each returns an error message, or undefined when the value is acceptable.
 */
import { isIPv4, isIPv6 } from "node:net";

/** RFC 1123 label, as Kubernetes requires for namespace names. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes label value: empty, or alphanumeric at both ends with `-_.` inside, ≤63 chars. */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** A Kubernetes resource.Quantity (apimachinery/pkg/api/resource/quantity.go). */
const QUANTITY = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$/;

const SUFFIX_MULTIPLIER: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

export function dns1123LabelError(value: string): string | undefined {
  if (value.length > 63) return "must be at most 63 characters";
  if (!DNS1123_LABEL.test(value)) {
    return "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit";
  }
  return undefined;
}

export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return "must be at most 63 characters";
  if (!LABEL_VALUE.test(value)) {
    return "must be a Kubernetes label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** Parses a Kubernetes quantity into a plain number, or undefined when Kubernetes would refuse it. */
export function parseQuantity(value: string): number | undefined {
  const match = QUANTITY.exec(value);
  if (!match) return undefined;
  const [, number, suffix = ""] = match;
  const multiplier = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX_MULTIPLIER[suffix];
  return Number(number) * multiplier;
}

/** A CIDR block in canonical form (no host bits set), IPv4 or IPv6. */
export function cidrError(value: string): string | undefined {
  const [address, prefix, ...rest] = value.split("/");
  const maxPrefix = isIPv4(address) ? 32 : isIPv6(address) ? 128 : undefined;
  if (rest.length > 0 || prefix === undefined || maxPrefix === undefined || !/^[0-9]{1,3}$/.test(prefix)) {
    return "must be a CIDR block such as 203.0.113.7/32 or 2001:db8::/64";
  }
  const bits = Number(prefix);
  if (bits > maxPrefix) return `prefix length must be at most ${maxPrefix}`;
  if (bits === 0) {
    return "must not open SSH and the Kubernetes API to the whole internet; list the networks you administer from";
  }
  if (maxPrefix === 32 && hostBitsSet(address, bits)) {
    return "has host bits set; use the network address (for example 203.0.113.0/24)";
  }
  return undefined;
}

function hostBitsSet(ipv4: string, prefix: number): boolean {
  const value = ipv4.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return value % 2 ** (32 - prefix) !== 0;
}

/** A fully qualified DNS name such as example.com (no trailing dot). */
export function domainError(value: string): string | undefined {
  if (value.length > 253) return "must be at most 253 characters";
  const labels = value.split(".");
  if (labels.length < 2 || labels.some((label) => dns1123LabelError(label) !== undefined)) {
    return "must be a DNS name such as example.com: dot-separated lower-case labels";
  }
  return undefined;
}

/**
 * A contact address Let's Encrypt accepts for an ACME account: it refuses example.com, .net and
 * .org and the reserved top-level domains, so such a placeholder would only fail inside the cluster.
 */
export function acmeEmailError(value: string): string | undefined {
  const domain = /^[^@\s]+@([^@\s]+)$/.exec(value)?.[1].toLowerCase();
  if (domain === undefined || domainError(domain) !== undefined) return "must be an e-mail address such as ops@your-company.com";
  if (/(^|\.)example\.(com|net|org)$/.test(domain) || /\.(example|invalid|localhost|test)$/.test(domain)) {
    return "must be a real mailbox: Let's Encrypt refuses example.com, .net, .org and reserved domains";
  }
  return undefined;
}

/** A Go duration as Flux intervals use it, for example 1m, 30s or 1h30m. */
export function durationError(value: string): string | undefined {
  return /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/.test(value) ? undefined : "must be a duration such as 1m, 30s or 1h30m";
}

/** Where an SSH host or a certificate SAN may point: an IP address or a DNS name. */
export function hostError(value: string): string | undefined {
  if (isIPv4(value) || isIPv6(value)) return undefined;
  const labels = value.split(".");
  if (value.length <= 253 && labels.every((label) => dns1123LabelError(label) === undefined)) return undefined;
  return "must be an IP address or a DNS name such as k0s.example.com";
}

/** An OpenSSH public key line, as ssh-keyscan prints a host key or ~/.ssh/*.pub holds a user's. */
export function sshPublicKeyError(value: string): string | undefined {
  return /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( .*)?$/.test(value)
    ? undefined
    : "must be an OpenSSH public key line such as 'ssh-ed25519 AAAA... comment'";
}

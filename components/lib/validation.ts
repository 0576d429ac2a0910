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

/** The narrowest admin network prefixes accepted by default: one office or VPN exit, not a provider. */
export const DEFAULT_MIN_PREFIX: MinPrefix = { ipv4: 24, ipv6: 48 };

/** The broadest prefix length an admin network may have, per address family. */
export interface MinPrefix {
  readonly ipv4: number;
  readonly ipv6: number;
}

interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}

/**
 * IPv6 ranges that carry IPv4 addresses inside them, so a "narrow" IPv6 prefix there stands for a
 * broad slice of the IPv4 internet (::ffff:0:0/96 is all of it at /96, well inside the /48 rule), or
 * for sources anyone can take. Each is refused, whatever its length.
 */
const EMBEDDED_IPV4: readonly { cidr: string; why: string }[] = [
  // Dual-stack sockets (sshd, the API server) see every IPv4 client as ::ffff:a.b.c.d.
  { cidr: "::ffff:0:0/96", why: "is IPv4-mapped IPv6 (::ffff:0:0/96), which stands for IPv4 clients" },
  // Deprecated (RFC 4291), and ::/96 also covers :: and ::1; the same trick as mapped addresses.
  { cidr: "::/96", why: "is IPv4-compatible IPv6 (::/96, deprecated), which stands for IPv4 addresses" },
  // A NAT64 translator makes any IPv4 host appear from inside these prefixes (RFC 6052, RFC 8215).
  { cidr: "64:ff9b::/96", why: "is the NAT64 prefix 64:ff9b::/96, from which any IPv4 host can appear through a translator" },
  { cidr: "64:ff9b:1::/48", why: "is the local-use NAT64 prefix 64:ff9b:1::/48, from which any IPv4 host can appear" },
  // 6to4 relays are open and anycast: anyone can send from any 2002::/16 address (RFC 7526).
  { cidr: "2002::/16", why: "is 6to4 (2002::/16), whose open relays let anyone send from these addresses" },
  // Teredo addresses are handed to any client that asks a Teredo server (RFC 4380).
  { cidr: "2001::/32", why: "is Teredo (2001::/32), whose addresses any client can obtain" },
];

/**
 * An admin network: a CIDR block in canonical form (no host bits set), IPv4 or IPv6, no broader than
 * `minPrefix` (so 0.0.0.0/1 + 128.0.0.0/1, or ::/1, cannot add up to the internet), and outside the
 * IPv6 ranges that embed IPv4 addresses.
 */
export function cidrError(value: string, minPrefix: MinPrefix = DEFAULT_MIN_PREFIX): string | undefined {
  const allowed = `allowed: IPv4 /${minPrefix.ipv4} to /32, IPv6 /${minPrefix.ipv6} to /128 (adminCidrMinPrefixIpv4, adminCidrMinPrefixIpv6)`;
  const problem = cidrShapeError(value, "203.0.113.7/32 or 2001:db8::/64");
  if (problem !== undefined) return problem;
  const cidr = parseCidr(value)!;
  const address = value.split("/")[0];
  if (cidr.network !== addressValue(address)) {
    const fixes = hostBitsFixes(address, cidr, minPrefix);
    // None is accepted only inside an IPv4-embedding range, which the check below names instead.
    if (fixes.length > 0) return `has host bits set; use ${fixes.join(" or ")}`;
  }
  const bits = cidr.prefix;
  if (bits === 0) {
    return `must not open SSH and the Kubernetes API to the whole internet; list the networks you administer from; ${allowed}`;
  }
  const least = cidr.family === 4 ? minPrefix.ipv4 : minPrefix.ipv6;
  if (bits < least) return `is broader than /${least}, more than the networks you administer from; ${allowed}`;
  if (cidr.family === 6) {
    const embedded = EMBEDDED_IPV4.find((range) => overlaps(cidr, parseCidr(range.cidr)!));
    if (embedded !== undefined) return `${embedded.why}; list the IPv4 network itself (for example 203.0.113.0/24)`;
  }
  return undefined;
}

/**
 * What an admin network with host bits set was probably meant to be, among the values cidrError
 * accepts: its network at the prefix given, the address alone, and for IPv6 the address's /64 (a
 * LAN's, so it survives the privacy addresses a dual-stack machine rotates through). An address
 * pasted with IPv4's /32 (`"$(curl -s https://ifconfig.me)/32"` on a dual-stack machine) is then
 * never answered with a network the minimum prefix refuses again.
 */
function hostBitsFixes(address: string, cidr: Cidr, minPrefix: MinPrefix): string[] {
  const width = cidr.family === 4 ? 32 : 128;
  const at = (prefix: number, why: string) => ({ text: formatNetwork(parseCidr(`${address}/${prefix}`)!), why });
  const candidates = [
    at(cidr.prefix, `its /${cidr.prefix} network`),
    at(width, "that address alone"),
    ...(cidr.family === 6 && cidr.prefix !== 64 ? [at(64, "its /64 network")] : []),
  ];
  return candidates.filter(({ text }) => cidrError(text, minPrefix) === undefined).map(({ text, why }) => `${text} (${why})`);
}

/** A CIDR block in canonical form: an IPv4 or IPv6 network address, no host bits set. */
function canonicalCidrError(value: string, example: string): string | undefined {
  const problem = cidrShapeError(value, example);
  if (problem !== undefined) return problem;
  const cidr = parseCidr(value)!;
  if (cidr.network !== addressValue(value.split("/")[0])) {
    return `has host bits set; use the network address (for example ${formatNetwork(cidr)})`;
  }
  return undefined;
}

/** An IPv4 or IPv6 address, a slash and a prefix length that fits it. */
function cidrShapeError(value: string, example: string): string | undefined {
  const [address, prefix, ...rest] = value.split("/");
  const maxPrefix = isIPv4(address) ? 32 : isIPv6(address) ? 128 : undefined;
  if (rest.length > 0 || prefix === undefined || maxPrefix === undefined || !/^[0-9]{1,3}$/.test(prefix)) {
    return `must be a CIDR block such as ${example}`;
  }
  if (Number(prefix) > maxPrefix) return `prefix length must be at most ${maxPrefix}`;
  return undefined;
}

/**
 * The link-local ranges, where clouds answer their metadata service (DigitalOcean's at
 * 169.254.169.254 hands out the droplet's user data): no environment's pod may reach them.
 */
const LINK_LOCAL: readonly Cidr[] = ["169.254.0.0/16", "fe80::/10"].map((range) => parseCidr(range)!);

/** A block an environment declares its pods may reach: canonical, and not inside a link-local range. */
export function egressCidrError(value: string): string | undefined {
  const problem = canonicalCidrError(value, "203.0.113.10/32 or 0.0.0.0/0");
  if (problem !== undefined) return problem;
  const cidr = parseCidr(value)!;
  const inside = LINK_LOCAL.find((range) => cidr.prefix >= range.prefix && overlaps(cidr, range));
  if (inside === undefined) return undefined;
  return `is inside the link-local range ${formatNetwork(inside)}, where the cloud's metadata service answers (169.254.169.254); pods must never reach it`;
}

/** The link-local ranges a declared egress block contains, which its policy leaves out (`except`). */
export function egressExcept(value: string): string[] {
  const cidr = parseCidr(value)!;
  return LINK_LOCAL.filter((range) => cidr.prefix < range.prefix && overlaps(cidr, range)).map(formatNetwork);
}

/** Parses a syntactically valid CIDR block (the network keeps only the prefix's bits). */
function parseCidr(value: string): Cidr | undefined {
  const [address, prefix] = value.split("/");
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined || prefix === undefined) return undefined;
  const width = family === 4 ? 32 : 128;
  const bits = Number(prefix);
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  return { family, network: addressValue(address) & ~hostMask, prefix: bits };
}

/** Whether one block contains the other (two CIDR blocks either nest or are disjoint). */
function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const width = a.family === 4 ? 32 : 128;
  const shorter = Math.min(a.prefix, b.prefix);
  const shift = BigInt(width - shorter);
  return a.network >> shift === b.network >> shift;
}

/** An IPv4 or IPv6 address (net.isIP-valid, including ::ffff:1.2.3.4 forms) as a number. */
function addressValue(address: string): bigint {
  if (isIPv4(address)) return address.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  let text = address;
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = addressValue(dotted[2]);
    text = `${dotted[1]}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (part: string | undefined) => (part === undefined || part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return all.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function formatNetwork(cidr: Cidr): string {
  if (cidr.family === 4) {
    const octets = [24n, 16n, 8n, 0n].map((shift) => String((cidr.network >> shift) & 0xffn));
    return `${octets.join(".")}/${cidr.prefix}`;
  }
  const groups = Array.from({ length: 8 }, (_, index) => ((cidr.network >> BigInt(112 - 16 * index)) & 0xffffn).toString(16));
  // The longest run of two or more zero groups becomes "::", as RFC 5952 writes it.
  let best = { start: -1, length: 1 };
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === "0") length++;
    if (length > best.length) best = { start, length };
  }
  const text =
    best.start < 0 ? groups.join(":") : `${groups.slice(0, best.start).join(":")}::${groups.slice(best.start + best.length).join(":")}`;
  return `${text}/${cidr.prefix}`;
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
 * The local part of an e-mail address in the shape RFC 5322 calls dot-atom, narrowed to letters,
 * digits and `._+-`, starting and ending with a letter or digit. Flux substitutes acmeEmail into the
 * GitOps repository's YAML as text (postBuild substitution, unquoted there), so anything YAML or the
 * substitution reads as syntax (`: `, quotes, `#`, `{`, `!`, `&`, `*`, `$`, spaces, newlines) must
 * never reach it; legal but exotic local parts (quoted strings, `'`, `{`) are refused for that reason.
 */
const EMAIL_LOCAL_PART = /^[A-Za-z0-9](?:[A-Za-z0-9_+-]|\.(?!\.))*(?<!\.)$/;

/**
 * A contact address Let's Encrypt accepts for an ACME account: it refuses example.com, .net and
 * .org and the reserved top-level domains, so such a placeholder would only fail inside the cluster.
 */
export function acmeEmailError(value: string): string | undefined {
  const shape = "must be an e-mail address such as ops@your-company.com: letters, digits and ._+- before the @, a DNS name after it";
  const match = /^([^@]+)@([^@]+)$/.exec(value);
  if (match === null || value.length > 254) return shape;
  const [, local, domain] = match;
  if (local.length > 64 || !EMAIL_LOCAL_PART.test(local) || domainError(domain.toLowerCase()) !== undefined) return shape;
  if (/(^|\.)example\.(com|net|org)$/i.test(domain) || /\.(example|invalid|localhost|test)$/i.test(domain)) {
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

/** An OpenSSH public key line, as /etc/ssh/ssh_host_*_key.pub holds a host's or ~/.ssh/*.pub a user's. */
export function sshPublicKeyError(value: string): string | undefined {
  return /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( .*)?$/.test(value)
    ? undefined
    : "must be an OpenSSH public key line such as 'ssh-ed25519 AAAA... comment'";
}

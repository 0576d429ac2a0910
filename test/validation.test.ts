import fc from "fast-check";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { hostMatches, hostPatternError, hostPatternsOverlap } from "../components/lib/hostNames";
import { containerDefaults, isQuotaKey, quotaErrors } from "../components/lib/quota";
import { acmeEmailError, cidrError, dns1123LabelError, labelValueError, parseQuantity } from "../components/lib/validation";
import { ROOT } from "./lib/program";

describe("parseQuantity", () => {
  it.each([
    ["1", 1],
    ["500m", 0.5],
    ["1.5", 1.5],
    ["1Gi", 2 ** 30],
    ["512Mi", 512 * 2 ** 20],
    ["2G", 2e9],
    ["1e3", 1000],
    ["100k", 1e5],
  ])("%s is %d", (text, value) => {
    expect(parseQuantity(text)).toBe(value);
  });

  it.each(["", "1GB", "one", "1 Gi", "Gi", "1.2.3", "--1"])("refuses %j", (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });

  it("orders binary suffixes above their decimal siblings", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom("K", "M", "G", "T"), (n, prefix) => {
        const decimal = prefix === "K" ? "k" : prefix;
        expect(parseQuantity(`${n}${prefix}i`)!).toBeGreaterThan(parseQuantity(`${n}${decimal}`)!);
      }),
    );
  });
});

describe("name and label rules", () => {
  const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);

  it("accepts every RFC 1123 label and refuses it with upper case or an edge dash", () => {
    fc.assert(
      fc.property(label, (name) => {
        expect(dns1123LabelError(name)).toBeUndefined();
        expect(dns1123LabelError(`-${name}`)).toBeDefined();
        expect(dns1123LabelError(`${name}-`)).toBeDefined();
        if (/[a-z]/.test(name)) expect(dns1123LabelError(name.toUpperCase())).toBeDefined();
      }),
    );
  });

  it("refuses names over 63 characters", () => {
    fc.assert(
      fc.property(fc.integer({ min: 64, max: 300 }), (length) => {
        expect(dns1123LabelError("a".repeat(length))).toBeDefined();
      }),
    );
  });

  it.each([
    ["", true],
    ["acme", true],
    ["Acme_Corp.eu-1", true],
    ["_acme", false],
    ["acme.", false],
    ["acme corp", false],
    ["a".repeat(64), false],
  ])("label value %j accepted: %s", (value, accepted) => {
    expect(labelValueError(value) === undefined).toBe(accepted);
  });
});

describe("cidrError: admin networks", () => {
  it.each(["203.0.113.7/32", "198.51.100.0/24", "2001:db8::/64", "2001:db8:1::/48", "192.168.1.0/24", "2a01:4f8:c2c:123::1/128"])(
    "accepts %s",
    (cidr) => {
      expect(cidrError(cidr)).toBeUndefined();
    },
  );

  it.each([
    ["203.0.113.7", "must be a CIDR block"],
    ["203.0.113.7/33", "at most 32"],
    ["10.0.0.1/8", "host bits"],
    ["2001:db8::1/64", "has host bits set; use 2001:db8::/64 (its /64 network) or 2001:db8::1/128 (that address alone)"],
    ["203.0.113.7/24", "has host bits set; use 203.0.113.0/24 (its /24 network) or 203.0.113.7/32 (that address alone)"],
    // The issue's: an IPv6 address pasted with IPv4's /32; its /32 network is broader than /48.
    [
      "2a01:4f8:c17:1234::1/32",
      "has host bits set; use 2a01:4f8:c17:1234::1/128 (that address alone) or 2a01:4f8:c17:1234::/64 (its /64 network)",
    ],
    ["0.0.0.0/0", "whole internet"],
    ["::/0", "whole internet"],
    ["host.example.com/32", "must be a CIDR block"],
    ["10.0.0.0/8/8", "must be a CIDR block"],
  ])("refuses %s (%s)", (cidr, why) => {
    expect(cidrError(cidr)).toContain(why);
  });

  // The issue's own examples: two halves that add up to the internet, and ::/1.
  it.each([
    ["0.0.0.0/1", "is broader than /24"],
    ["128.0.0.0/1", "is broader than /24"],
    ["10.0.0.0/8", "is broader than /24"],
    ["203.0.112.0/23", "is broader than /24"],
    ["::/1", "is broader than /48"],
    ["2001:db8::/32", "is broader than /48"],
  ])("refuses %s, broader than the minimum prefix, saying what is allowed", (cidr, why) => {
    expect(cidrError(cidr)).toContain(why);
    expect(cidrError(cidr)).toContain("allowed: IPv4 /24 to /32, IPv6 /48 to /128 (adminCidrMinPrefixIpv4, adminCidrMinPrefixIpv6)");
  });

  it("refuses every IPv4 prefix broader than /24 and accepts every narrower one (no sum of entries reaches the internet)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 1, max: 32 }), (address, prefix) => {
        const network = prefix === 32 ? address : address - (address % 2 ** (32 - prefix));
        const text = `${[24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join(".")}/${prefix}`;
        if (prefix < 24) expect(cidrError(text)).toContain("is broader than /24");
        else expect(cidrError(text)).toBeUndefined();
      }),
    );
  });

  it("suggests, for a block with host bits set, only values it accepts itself, whatever the minimum prefixes", () => {
    const group = fc.integer({ min: 0, max: 0xffff }).map((value) => value.toString(16));
    // Global unicast (2000::/3) outside 2001::/16 and 2002::/16, so no IPv4-embedding range is involved.
    const ipv6 = fc
      .tuple(fc.integer({ min: 0x2003, max: 0x3fff }), fc.array(group, { minLength: 7, maxLength: 7 }))
      .map(([first, rest]) => [first.toString(16), ...rest].join(":"));
    const ipv4 = fc.array(fc.integer({ min: 1, max: 254 }), { minLength: 4, maxLength: 4 }).map((octets) => octets.join("."));
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(ipv4, fc.integer({ min: 1, max: 31 })), fc.tuple(ipv6, fc.integer({ min: 1, max: 127 }))),
        fc.record({ ipv4: fc.integer({ min: 16, max: 32 }), ipv6: fc.integer({ min: 32, max: 128 }) }),
        ([address, prefix], min) => {
          const problem = cidrError(`${address}/${prefix}`, min);
          fc.pre(problem?.startsWith("has host bits set") === true);
          const suggested = [...problem.matchAll(/use (\S+) \(|or (\S+) \(/g)].map((match) => match[1] ?? match[2]);
          expect(suggested.length).toBeGreaterThan(0);
          for (const value of suggested) expect(cidrError(value, min), value).toBeUndefined();
        },
      ),
    );
  });

  it("takes the minimum prefix from its argument: /16 admits a /16 and still refuses a /15", () => {
    const min = { ipv4: 16, ipv6: 32 };
    expect(cidrError("10.20.0.0/16", min)).toBeUndefined();
    expect(cidrError("10.20.0.0/15", min)).toContain("is broader than /16");
    expect(cidrError("2001:db8::/32", min)).toBeUndefined();
    expect(cidrError("2001:db8::/31", min)).toContain("is broader than /32");
  });

  it.each([
    ["::ffff:0:0/96", "IPv4-mapped"],
    ["::ffff:203.0.113.7/128", "IPv4-mapped"],
    ["::ffff:cb00:7100/120", "IPv4-mapped"],
    ["::/96", "IPv4-compatible"],
    ["::cb00:7107/128", "IPv4-compatible"],
    ["::1/128", "IPv4-compatible"],
    ["64:ff9b::/96", "NAT64"],
    ["64:ff9b::cb00:7107/128", "NAT64"],
    ["64:ff9b:1::/48", "local-use NAT64"],
    ["2002:cb00:7107::/48", "6to4"],
    ["2001:0:4136:e378::/64", "Teredo"],
  ])("refuses %s, an IPv6 range standing for IPv4 addresses or for anyone (%s)", (cidr, why) => {
    expect(cidrError(cidr)).toContain(why);
    expect(cidrError(cidr)).toContain("list the IPv4 network itself");
  });

  it("refuses anything inside ::ffff:0:0/96, while the same host bits under a real /96 are accepted", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 96, max: 128 }), (v4, prefix) => {
        const bits = prefix === 128 ? v4 : v4 - (v4 % 2 ** (128 - prefix));
        const tail = `${Math.floor(bits / 65536).toString(16)}:${(bits % 65536).toString(16)}`;
        expect(cidrError(`::ffff:${tail}/${prefix}`)).toContain("IPv4-mapped");
        expect(cidrError(`2001:db8::${tail}/${prefix}`)).toBeUndefined();
      }),
    );
  });
});

describe("acmeEmailError: an address that stays one YAML value where Flux substitutes it", () => {
  // The GitOps repository's issuers, as Flux's postBuild substitution sees them. They quote
  // "${acme_email}"; validation is what still holds in a copy whose quotes were dropped.
  const issuers = fs.readFileSync(path.join(ROOT, "gitops/infrastructure/overlays/remote/configs/letsencrypt.yaml"), "utf8");
  const unquoted = issuers.replaceAll('"${acme_email}"', "${acme_email}");
  const emailsAfterSubstitution = (address: string, template = issuers): unknown[] => {
    const documents = parseAllDocuments(template.replaceAll("${acme_email}", address));
    try {
      if (documents.some((document) => document.errors.length > 0)) return ["(YAML error)"];
      return documents.map((document) => (document.toJS() as { spec: { acme: { email: unknown } } }).spec.acme.email);
    } catch (error) {
      return [`(YAML error: ${(error as Error).message})`];
    }
  };

  it.each(["ops@your-company.com", "first.last+certs@sub.acme-consulting.eu", "Ops_Team@ACME.io", "a@b.co"])("accepts %s", (address) => {
    expect(acmeEmailError(address)).toBeUndefined();
    expect(emailsAfterSubstitution(address)).toEqual([address, address]);
    expect(emailsAfterSubstitution(address, unquoted)).toEqual([address, address]);
  });

  it.each([
    ["a@b.c: x", "a mapping after the address"],
    ['"ops"@acme.io', "quotes"],
    ["o'neil@acme.io", "a single quote"],
    ["ops@acme.io #team", "a comment"],
    ["{ops}@acme.io", "a flow mapping"],
    ["!ops@acme.io", "a tag"],
    ["*ops@acme.io", "an alias"],
    ["ops@acme.io\nserver: https://evil.example/directory", "a second key"],
    ["${other}@acme.io", "a substitution variable"],
    ["ops..team@acme.io", "an empty dot-atom"],
    [".ops@acme.io", "a leading dot"],
    ["ops", "no domain"],
    ["ops@acme", "no dotted domain"],
    [`${"a".repeat(65)}@acme.io`, "a local part over 64 characters"],
  ])("refuses %j (%s)", (address) => {
    expect(acmeEmailError(address)).toContain("must be an e-mail address such as ops@your-company.com");
  });

  it("refuses what would break the issuers: each refused example really changes or breaks them unquoted (the reason it is refused)", () => {
    expect(issuers).toContain('email: "${acme_email}"');
    for (const address of ["a@b.c: x", "ops@acme.io #team", "{ops}@acme.io", "*ops@acme.io", "ops@acme.io\nserver: x"]) {
      expect(emailsAfterSubstitution(address, unquoted), address).not.toEqual([address, address]);
    }
  });

  it("accepts only addresses that survive substitution unchanged", () => {
    const atom = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9_+-]{0,10}[A-Za-z0-9])?$/);
    const local = fc.array(atom, { minLength: 1, maxLength: 3 }).map((atoms) => atoms.join("."));
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const domain = fc
      .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom("eu", "io", "com", "de"))
      .map(([labels, tld]) => `${labels.join(".")}.${tld}`);
    fc.assert(
      fc.property(local, domain, (name, host) => {
        const address = `${name}@${host}`;
        if (acmeEmailError(address) === undefined) expect(emailsAfterSubstitution(address, unquoted)).toEqual([address, address]);
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (address) => {
        if (acmeEmailError(address) === undefined) expect(emailsAfterSubstitution(address, unquoted)).toEqual([address, address]);
      }),
    );
  });
});

describe("quota", () => {
  it.each([
    "requests.cpu",
    "limits.memory",
    "pods",
    "count/deployments.apps",
    "gold.storageclass.storage.k8s.io/requests.storage",
    "requests.nvidia.com/gpu",
    "requests.hugepages-2Mi",
  ])("%s is a quota key", (key) => expect(isQuotaKey(key)).toBe(true));
  it.each(["request.cpu", "cpus", "limits.nvidia.com/gpu", "count/", "Pods"])("%s is not", (key) => expect(isQuotaKey(key)).toBe(false));

  it("accepts the seed's staging and production quotas", () => {
    expect(
      quotaErrors("q", { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", pods: "20" }),
    ).toEqual([]);
    expect(
      quotaErrors("q", { "requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8", "limits.memory": "16Gi", pods: "50" }),
    ).toEqual([]);
  });

  it("compares requests to limits across units", () => {
    expect(quotaErrors("q", { "requests.cpu": "1500m", "limits.cpu": "1" })).toEqual([
      'q.requests.cpu: "1500m" is above limits.cpu "1"; requests cannot exceed limits',
    ]);
    expect(quotaErrors("q", { "requests.memory": "1G", "limits.memory": "1Gi" })).toEqual([]);
  });
});

describe("containerDefaults", () => {
  it("gives none when the quota leaves cpu and memory alone", () => {
    expect(containerDefaults({ pods: "10" })).toBeUndefined();
    expect(containerDefaults({})).toBeUndefined();
  });

  it("uses the baseline when the quota is roomy", () => {
    expect(containerDefaults({ "requests.cpu": "4", "limits.cpu": "8", "requests.memory": "8Gi", "limits.memory": "16Gi" })).toEqual({
      defaultRequest: { cpu: "100m", memory: "128Mi" },
      default: { cpu: "500m", memory: "512Mi" },
    });
  });

  it("never lets a default exceed the quota, and never a request exceed its limit", () => {
    const quantity = fc.tuple(fc.integer({ min: 1, max: 4000 }), fc.constantFrom("m", "Mi")).map(([n, unit]) => `${n}${unit}`);
    fc.assert(
      fc.property(quantity, quantity, (cpu, memory) => {
        const defaults = containerDefaults({ "limits.cpu": cpu, "requests.memory": memory })!;
        expect(parseQuantity(defaults.default.cpu)!).toBeLessThanOrEqual(parseQuantity(cpu)!);
        expect(parseQuantity(defaults.defaultRequest.memory)!).toBeLessThanOrEqual(parseQuantity(memory)!);
        for (const resource of ["cpu", "memory"] as const) {
          expect(parseQuantity(defaults.defaultRequest[resource])!).toBeLessThanOrEqual(parseQuantity(defaults.default[resource])!);
        }
      }),
    );
  });
});

describe("host names bound to namespaces", () => {
  it.each([
    ["*.staging.example.com", "podinfo.staging.example.com", true],
    ["*.example.com", "podinfo.example.com", true],
    ["*.example.com", "podinfo.staging.example.com", false],
    ["*.example.com", "example.com", false],
    ["*.example.com", ".example.com", false],
    ["*.example.com", "podinfo.example.com.evil.io", false],
    ["*.example.com", "podinfoexample.com", false],
    ["shop.example.com", "shop.example.com", true],
    ["shop.example.com", "www.shop.example.com", false],
    ["*.example.com", "*.example.com", true],
  ])("%s covers %s: %s", (pattern, host, covered) => {
    expect(hostMatches(pattern, host)).toBe(covered);
  });

  it("finds an overlap exactly when some host name matches both patterns", () => {
    const label = fc.constantFrom("a", "b", "shop", "staging");
    const pattern = fc
      .tuple(fc.boolean(), fc.array(label, { minLength: 1, maxLength: 3 }))
      .map(([wildcard, labels]) => `${wildcard ? "*." : ""}${labels.join(".")}.example.com`);
    // A single-label wildcard, instantiated with a label no pattern holds, is any host it covers.
    const instance = (p: string) => p.replace("*", "zz");
    fc.assert(
      fc.property(pattern, pattern, (a, b) => {
        const shared = [instance(a), instance(b)].some((host) => hostMatches(a, host) && hostMatches(b, host));
        expect(hostPatternsOverlap(a, b)).toBe(shared);
      }),
    );
  });

  it.each(["*.staging.example.com", "podinfo.dev.localtest.me", "shop.example.org"])("accepts %s", (pattern) => {
    expect(hostPatternError(pattern)).toBeUndefined();
  });

  it.each(["*", "*.com", "*example.com", "a.*.example.com", "Shop.example.com", "shop.example.com."])("refuses %s", (pattern) => {
    expect(hostPatternError(pattern)).toBeDefined();
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { containerDefaults, isQuotaKey, quotaErrors } from "../components/lib/quota";
import { cidrError, dns1123LabelError, labelValueError, parseQuantity } from "../components/lib/validation";

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

describe("cidrError", () => {
  it.each(["203.0.113.7/32", "10.0.0.0/8", "2001:db8::/64", "192.168.1.0/24"])("accepts %s", (cidr) => {
    expect(cidrError(cidr)).toBeUndefined();
  });
  it.each([
    ["203.0.113.7", "must be a CIDR block"],
    ["203.0.113.7/33", "at most 32"],
    ["10.0.0.1/8", "host bits"],
    ["0.0.0.0/0", "whole internet"],
    ["host.example.com/32", "must be a CIDR block"],
    ["10.0.0.0/8/8", "must be a CIDR block"],
  ])("refuses %s (%s)", (cidr, why) => {
    expect(cidrError(cidr)).toContain(why);
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

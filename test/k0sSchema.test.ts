/**
 * Every k0s config the project ships or renders, checked strictly against k0s's own ClusterConfig
 * schema (the CRD in ../shared/upstream-data/k0s-clusterconfig-v*): unknown fields, wrong types and
 * bad enums are refused, as k0s's strict YAML decoding refuses them.
 *
 * Which schema: a rendered config is read by the k0s release in its stack's `k0sVersion`, so it is
 * checked against that release line's schema (v1.36.3 for the default v1.36.3+k0s.2), and also
 * against v1.35.4, the minor version a cluster created before that default upgrades from, whose k0s
 * reads the same file until the upgrade. A shipped config whose k0s the user installs (k0s/workstation.yaml) is
 * checked against every schema in upstream-data.
 */
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { K0S_RELEASE } from "../components/lib/k0s";
import { mockCloud } from "./lib/cloud";
import { inputsOf } from "./lib/graph";
import {
  availableSchemaVersions,
  clusterConfigCheck,
  compileCheck,
  goPatternToJs,
  schemaVersionFor,
  structuralToJsonSchema,
  upstreamDataDir,
  upstreamDataSkipReason,
} from "./lib/k0sSchema";
import { ProgramRun, ROOT, runProgram, withFluxFixture } from "./lib/program";
import { seedStackConfig } from "./lib/seedStacks";

/** The k0s line the project's default moves to (issue 14): every config must pass its schema. */
const TARGET_SCHEMA = "v1.36.3";
const HEADER = { apiVersion: "k0s.k0sproject.io/v1beta1", kind: "ClusterConfig", metadata: { name: "k0s" } };
/** Why the checks that read upstream data skip here (a user's clone has no shared/ beside it), if they do. */
const upstreamDataMissing = upstreamDataSkipReason();
/** Skips each test of the block, with the reason a reporter prints after the summary, where that data is missing. */
const needsUpstreamData = () => beforeEach((context) => context.skip(upstreamDataMissing !== undefined, upstreamDataMissing));
const readYaml = (file: string) => parse(fs.readFileSync(path.join(ROOT, file), "utf8")) as Record<string, unknown>;

describe("structuralToJsonSchema: a CRD's OpenAPI v3 schema as a strict JSON Schema", () => {
  const object = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: "object", properties, ...extra });
  it.each([
    ["an unknown field", object({ a: { type: "string" } }), { b: "x" }, ["b: unknown field"]],
    ["an unknown field in an object without properties", object({ s: { type: "object" } }), { s: { x: 1 } }, ["s.x: unknown field"]],
    ["a wrong type", object({ a: { type: "integer" } }), { a: "1" }, ["a: must be integer"]],
    ["a bad enum", object({ a: { type: "string", enum: ["x", "y"] } }), { a: "z" }, ['a: must be one of "x", "y"']],
    [
      "a duplicate in a set",
      object({ a: { type: "array", items: { type: "string" }, "x-kubernetes-list-type": "set" } }),
      { a: ["x", "x"] },
      ["a: must NOT have duplicate items (items ## 1 and 0 are identical)"],
    ],
    [
      "a duplicate key in a map list",
      object({
        a: {
          type: "array",
          items: object({ name: { type: "string" } }),
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["name"],
        },
      }),
      { a: [{ name: "x" }, { name: "x" }] },
      ["a: has two items with the same name"],
    ],
    ["an int32 out of range", object({ a: { type: "integer", format: "int32" } }), { a: 2 ** 31 }, ['a: must match format "int32"']],
    [
      "a Go [[:xdigit:]] pattern",
      object({ a: { type: "string", pattern: "^[[:xdigit:]]+$" } }),
      { a: "xyz" },
      ['a: must match pattern "^[0-9A-Fa-f]+$"'],
    ],
    [
      "an OpenAPI v3.0 exclusive bound",
      object({ a: { type: "integer", minimum: 0, exclusiveMinimum: true } }),
      { a: 0 },
      ["a: must be > 0"],
    ],
    ["null where not nullable", object({ a: { type: "string" } }), { a: null }, ["a: must be string"]],
    ["a missing required field", object({ a: { type: "string" } }, { required: ["a"] }), {}, ["a: required"]],
  ])("refuses %s, naming the field", (_what, schema, value, messages) => {
    expect(compileCheck(structuralToJsonSchema(schema))(value)).toEqual(messages);
  });

  it.each([
    ["int-or-string as an integer", object({ a: { type: "string", "x-kubernetes-int-or-string": true } }), { a: 5 }],
    ["int-or-string as a string", object({ a: { type: "string", "x-kubernetes-int-or-string": true } }), { a: "5m" }],
    ["null where nullable", object({ a: { type: "string", nullable: true } }), { a: null }],
    [
      "anything under preserve-unknown-fields",
      object({ a: { type: "object", "x-kubernetes-preserve-unknown-fields": true } }),
      { a: { x: { y: 1 } } },
    ],
    ["any key of a map", object({ a: { type: "object", additionalProperties: { type: "string" } } }), { a: { "any-key": "v" } }],
    ["a Go [[:xdigit:]] pattern", object({ a: { type: "string", pattern: "^[[:xdigit:]]+$" } }), { a: "0aF9" }],
  ])("accepts %s", (_what, schema, value) => {
    expect(compileCheck(structuralToJsonSchema(schema))(value)).toEqual([]);
  });

  it("refuses to drop a rule it cannot check, rather than pass it silently", () => {
    const cel = object({ a: { type: "string", "x-kubernetes-validations": [{ rule: "self != ''" }] } });
    expect(() => structuralToJsonSchema(cel)).toThrow("openAPIV3Schema.a: schema keyword x-kubernetes-validations is not supported");
    expect(() => goPatternToJs("[[:graph:]]")).toThrow("unsupported POSIX class [:graph:]");
  });
});

describe("where the tests that read upstream data run", () => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "no-shared-"));
  const clone = path.join(elsewhere, "clone");
  afterAll(() => fs.rmSync(elsewhere, { recursive: true }));

  it("skips them in a clone with nothing beside it, saying why and how CI runs them", () => {
    expect(upstreamDataSkipReason(clone, false)).toMatch(
      /need the team's shared\/upstream-data beside the clone.*K0S_PLATFORM_UPSTREAM_DATA=required/,
    );
  });

  it("runs them where CI requires the data, so that its absence fails them rather than skipping them", () => {
    expect(upstreamDataSkipReason(clone, true)).toBeUndefined();
  });

  it("runs them wherever shared/upstream-data is beside the clone", () => {
    fs.mkdirSync(path.join(elsewhere, "shared", "upstream-data"), { recursive: true });
    expect(upstreamDataSkipReason(clone, false)).toBeUndefined();
  });
});

describe("k0s's ClusterConfig schemas in ../shared/upstream-data", () => {
  needsUpstreamData();
  it("holds the v1.36.3 schema of the default, and the v1.35.4 one that clusters upgrade from", () => {
    expect(availableSchemaVersions()).toEqual(expect.arrayContaining(["v1.35.4", TARGET_SCHEMA]));
    expect(fs.readFileSync(path.join(upstreamDataDir(), "k0s-clusterconfig-v1.36.3/SOURCE.md"), "utf8")).toContain("v1.36.3+k0s.2");
  });

  it.each([
    ["v1.35.4+k0s.0", "v1.35.4"],
    ["v1.35.1+k0s.0", "v1.35.4"],
    ["v1.36.3+k0s.2", "v1.36.3"],
  ])("reads a config for k0s %s with the %s schema", (release, schema) => {
    expect(schemaVersionFor(release)).toBe(schema);
  });

  it("says so when no schema matches the release, or when shared/ is not beside the clone", () => {
    expect(() => schemaVersionFor("v1.37.0+k0s.0")).toThrow(
      /no k0s ClusterConfig schema for v1\.37\.0\+k0s\.0 .*add k0s-clusterconfig-v1\.37\.x/,
    );
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "no-shared-"));
    expect(() => upstreamDataDir(path.join(elsewhere, "clone"))).toThrow(/Put a copy of shared\/ next to the clone/);
    fs.rmSync(elsewhere, { recursive: true });
  });

  it("tells the lines apart: v1.36's metricsServer patches are an unknown field to k0s v1.35", () => {
    const config = { ...HEADER, spec: { metricsServer: { patches: [] } } };
    expect(clusterConfigCheck("v1.36.3")(config)).toEqual([]);
    expect(clusterConfigCheck("v1.35.4")(config)).toEqual(["spec.metricsServer: unknown field"]);
  });
});

describe("shipped k0s configs", () => {
  needsUpstreamData();
  it("refuses test/fixtures/k0s-misspelt.yaml's misspelt field, wrong type and bad enum, each by its path", () => {
    const fixture = readYaml("test/fixtures/k0s-misspelt.yaml");
    for (const version of availableSchemaVersions()) {
      expect(clusterConfigCheck(version)(fixture), version).toEqual([
        "spec.api.onlyBindToAdress: unknown field",
        "spec.api.port: must be integer",
        'spec.storage.type: must be one of "etcd", "kine"',
      ]);
    }
  });

  it.each(["k0s/workstation.yaml"])("accepts %s under every k0s line's schema", (file) => {
    const config = readYaml(file);
    for (const version of availableSchemaVersions()) expect(clusterConfigCheck(version)(config), version).toEqual([]);
  });

  it("accepts e2e/node/k0s-test.yaml, the test node's additions to the workstation config, as a ClusterConfig", () => {
    const additions = { ...HEADER, ...readYaml("e2e/node/k0s-test.yaml") };
    for (const version of availableSchemaVersions()) expect(clusterConfigCheck(version)(additions), version).toEqual([]);
  });
});

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
/** More of the spec, as a user of an air-gapped registry and a custom network would set it. */
const K0S_SPEC = {
  images: {
    repository: "registry.example.com/k0s",
    default_pull_policy: "IfNotPresent",
    kuberouter: { cni: { image: "registry.example.com/kube-router", version: "v2.1.0" } },
  },
  network: { provider: "kuberouter", podCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12", kubeProxy: { mode: "iptables" } },
  api: { extraArgs: { "audit-log-maxage": "30" } },
  workerProfiles: [{ name: "default", values: { maxPods: 150 } }],
};

/** The k0s.yaml a run's CopyToRemote writes, and the k0s release its install step installs. */
async function renderedK0sConfig(run: ProgramRun): Promise<{ config: unknown; release: string }> {
  const copies = run.ofType("command:remote:CopyToRemote").filter((entry) => entry.name.endsWith("-k0s-config"));
  expect(copies).toHaveLength(1);
  const source = (copies[0].inputs as { source: pulumi.asset.StringAsset }).source;
  const install = copies[0].name.replace(/-k0s-config$/, "-install-k0s");
  const triggers = inputsOf(run, "command:remote:Command", install).triggers as unknown[];
  const release = triggers.find((value): value is string => typeof value === "string" && K0S_RELEASE.test(value));
  expect(release, "the install step's pinned k0s release").toBeDefined();
  return { config: parse(await source.text), release: release! };
}

describe("rendered k0s configs (the program under mocks)", () => {
  needsUpstreamData();
  const remote = seedStackConfig("remote");
  const remoteUser = {
    adminCidrs: ["203.0.113.7/32"],
    sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3mh9Dh1sZ0r0SBKyW9m2s3Kq2fI9rAx7Qh5oVtU2cJ ops@acme",
    sshPrivateKey: PRIVATE_KEY,
    acmeEmail: "platform@acme-consulting.eu",
  };
  const ssh = {
    target: "ssh",
    sshHost: "198.51.100.7",
    sshHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPWbQ2mMtVr3fT0Gk6pWv0cZJ0f9c1y7pS2b7oZ2q8xK",
    sshPrivateKey: PRIVATE_KEY,
    adminCidrs: ["203.0.113.0/24"],
    acmeEmail: "platform@acme-consulting.eu",
    environments: remote.environments,
    flux: remote.flux,
  };
  const cases: [string, string, Record<string, unknown>][] = [
    ["remote, Pulumi.remote.yaml as the README has a user complete it", "remote", { ...remote, ...remoteUser, domain: "example.com" }],
    [
      "remote, with k0sSpec, extra SANs (one repeating api.<domain>) and k0s v1.36.3+k0s.2",
      "remote",
      {
        ...remote,
        ...remoteUser,
        domain: "example.com",
        k0sVersion: "v1.36.3+k0s.2",
        k0sSpec: K0S_SPEC,
        apiSans: ["k0s.example.com", "api.example.com"],
      },
    ],
    ["ssh, the fewest settings", "edge", ssh],
    [
      "ssh, with k0sSpec and extra SANs (one repeating the host)",
      "edge",
      { ...ssh, k0sSpec: K0S_SPEC, apiSans: ["k0s.example.com", "198.51.100.7"] },
    ],
  ];
  const rendered: { config: unknown; release: string }[] = [];

  beforeAll(async () => {
    if (upstreamDataMissing !== undefined) return;
    for (const [, stack, config] of cases) {
      rendered.push(await renderedK0sConfig(await runProgram(stack, withFluxFixture(config), mockCloud(), ["sshPrivateKey"])));
    }
  });

  it.each(cases.map(([what], index) => [what, index] as const))("%s: valid for the k0s that reads it and for v1.36.3", (_what, index) => {
    const { config, release } = rendered[index];
    for (const version of new Set([schemaVersionFor(release), TARGET_SCHEMA])) {
      expect(clusterConfigCheck(version)(config), `${release} against the ${version} schema`).toEqual([]);
    }
  });

  it("renders the k0sSpec additions and every SAN once, so the check above saw them", () => {
    const withSpec = rendered[3].config as { spec: Record<string, any> };
    expect(withSpec.spec).toMatchObject({ ...K0S_SPEC, api: { extraArgs: K0S_SPEC.api.extraArgs, port: 6443 } });
    expect(withSpec.spec.api.sans).toEqual(["198.51.100.7", "k0s.example.com"]);
    expect((rendered[1].config as { spec: { api: { sans: string[] } } }).spec.api.sans).toEqual([
      "203.0.113.10",
      "k0s.example.com",
      "api.example.com",
    ]);
    expect(rendered.map(({ release }) => release)).toContain("v1.36.3+k0s.2");
  });
});

/**
 * The GitOps repository's own check (gitops/scripts/check.mjs, issue 21 item 4): its pure parts,
 * which need no kustomize, kubeconform or schema download. Schemas converted to strict JSON Schema
 * must refuse a misspelt field and accept what Kubernetes accepts; Secrets must be SOPS-encrypted
 * and inside a .sops.yaml rule (the rules the Pulumi project writes); an Ingress must name an issuer
 * its cluster defines. The whole check over real tools runs in e2e/gitops/check.e2e.ts.
 */
import Ajv from "ajv";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderSopsConfig } from "../components/lib/sopsConfig";
import { ROOT } from "./lib/program";

type Schema = Record<string, unknown>;
type K8sObject = Record<string, unknown>;
interface Render {
  label: string;
  objects: K8sObject[];
}
/** The modules' exports this file uses (plain .mjs, so typed here). */
interface CheckModules {
  toStrictSchema(node: unknown): Schema;
  kubernetesSchemas(swagger: unknown): Map<string, Schema>;
  crdSchemas(crd: unknown): Map<string, Schema>;
  secretFindings(files: { path: string; text: string }[], pathRules: string[] | undefined): string[];
  sopsPathRules(text: string | undefined): string[] | undefined;
  substitute(objects: K8sObject[], variables: Record<string, string>): K8sObject[];
  issuerFindings(cluster: string, renders: Render[]): string[];
}

const GITOPS = path.join(ROOT, "gitops");
const SCRIPT = path.join(GITOPS, "scripts/check.mjs");
let check: CheckModules;
beforeAll(async () => {
  const load = (file: string) => import(pathToFileURL(path.join(GITOPS, "scripts/check", file)).href);
  check = { ...(await load("schemas.mjs")), ...(await load("rules.mjs")) } as CheckModules;
});

const validator = (schema: Schema) => new Ajv({ strict: false, allErrors: true, allowUnionTypes: true }).compile(schema);

describe("schemas", () => {
  // A miniature of Kubernetes' swagger.json: $refs, a Quantity, an IntOrString and a recursive type.
  const swagger = {
    swagger: "2.0",
    definitions: {
      "io.k8s.api.apps.v1.Deployment": {
        "x-kubernetes-group-version-kind": [{ group: "apps", version: "v1", kind: "Deployment" }],
        type: "object",
        properties: { apiVersion: { type: "string" }, kind: { type: "string" }, spec: { $ref: "#/definitions/spec" } },
      },
      spec: {
        type: "object",
        required: ["selector"],
        properties: {
          replicas: { type: "integer", format: "int32" },
          selector: { type: "object", additionalProperties: { type: "string" } },
          cpu: { $ref: "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity" },
          maxSurge: { $ref: "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString" },
          raw: { type: "object" },
          strategy: { $ref: "#/definitions/strategy" },
          // Recursion (as JSONSchemaProps has) ends in an open schema rather than looping.
          next: { $ref: "#/definitions/spec" },
        },
      },
      strategy: { type: "object", properties: { type: { type: "string", enum: ["Recreate", "RollingUpdate"] } } },
      "io.k8s.apimachinery.pkg.api.resource.Quantity": { type: "string" },
      "io.k8s.apimachinery.pkg.util.intstr.IntOrString": { type: "string", format: "int-or-string" },
      "io.k8s.api.core.v1.Pod": { "x-kubernetes-group-version-kind": [{ group: "", version: "v1", kind: "Pod" }], type: "object" },
    },
  };

  it("writes one file per kind in kubeconform's layout, core kinds under v1/", () => {
    expect([...check.kubernetesSchemas(swagger).keys()].sort()).toEqual(["apps/deployment_v1.json", "v1/pod_v1.json"]);
  });

  it.each([
    ["a valid Deployment", { spec: { selector: { app: "x" }, replicas: 2, cpu: 1, maxSurge: "25%", raw: { any: 1 } } }, true],
    ["null where a field is optional", { spec: { selector: {}, replicas: null } }, true],
    ["a quantity as a string", { spec: { selector: {}, cpu: "100m" } }, true],
    ["replicas misspelt", { spec: { selector: {}, replica: 2 } }, false],
    ["an unknown top-level field", { spec: { selector: {} }, spek: {} }, false],
    ["a misspelt field one $ref further down", { spec: { selector: {}, strategy: { tpye: "Recreate" } } }, false],
    ["a value outside an enum", { spec: { selector: {}, strategy: { type: "BlueGreen" } } }, false],
    ["anything under a recursive reference", { spec: { selector: {}, next: { whatever: 1 } } }, true],
    ["a required field missing", { spec: {} }, false],
    ["a string for an integer", { spec: { selector: {}, replicas: "2" } }, false],
  ])("Deployment: %s -> valid %s", (_, object, valid) => {
    const schema = check.kubernetesSchemas(swagger).get("apps/deployment_v1.json")!;
    expect(validator(schema)({ apiVersion: "apps/v1", kind: "Deployment", ...object })).toBe(valid);
  });

  const crd = {
    kind: "CustomResourceDefinition",
    spec: {
      group: "helm.toolkit.fluxcd.io",
      names: { kind: "HelmRelease" },
      versions: [
        {
          name: "v2",
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: {
                  type: "object",
                  required: ["interval"],
                  properties: {
                    interval: { type: "string", pattern: "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$" },
                    values: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                    port: { "x-kubernetes-int-or-string": true },
                    timeout: { type: "string", nullable: true },
                    retries: { type: "integer", minimum: 0, exclusiveMinimum: true },
                    empty: { type: "object" },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };

  it.each([
    ["a valid HelmRelease", { interval: "30m", values: { anything: { goes: true } }, port: 80, timeout: null, retries: 1 }, true],
    ["int-or-string as a string", { interval: "1h", port: "http" }, true],
    ["a misspelt field", { interval: "30m", intervall: "30m" }, false],
    ["a field in an object the CRD leaves empty", { interval: "30m", empty: { x: 1 } }, false],
    ["an exclusive minimum reached", { interval: "30m", retries: 0 }, false],
    ["a pattern broken", { interval: "half an hour" }, false],
    ["null where the CRD does not allow it", { interval: "30m", port: null }, false],
  ])("HelmRelease: %s -> valid %s", (_, spec, valid) => {
    const schema = check.crdSchemas(crd).get("helm.toolkit.fluxcd.io/helmrelease_v2.json")!;
    expect(
      validator(schema)({ apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease", metadata: { name: "x", labels: {} }, spec }),
    ).toBe(valid);
  });
});

describe("secrets", () => {
  const secret = (extra: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n${extra}`;
  const SOPS = "sops:\n  version: 3.9.0\n";
  // The rules the Pulumi project writes (npm run sops-config), so the check and the writer agree.
  const age = (fill: string) => `age1${fill.repeat(58)}`;
  const sopsYaml = renderSopsConfig({ clusters: [age("q")], environments: { staging: [age("p")] }, operators: [], breakGlass: [] });
  const rules = () => check.sopsPathRules(sopsYaml);

  it.each([
    [
      "a plaintext Secret",
      "apps/overlays/staging/secrets/db.yaml",
      secret("stringData:\n  password: hunter2\n"),
      "Secret db is not SOPS-encrypted",
    ],
    [
      "an encrypted Secret where a rule covers it",
      "apps/overlays/staging/secrets/db.yaml",
      secret(`data:\n  p: ENC[x]\n${SOPS}`),
      undefined,
    ],
    [
      "an encrypted Secret outside every rule",
      "apps/overlays/staging/db.yaml",
      secret(`data:\n  p: ENC[x]\n${SOPS}`),
      "no creation rule of .sops.yaml matches",
    ],
    [
      "an encrypted file of another environment's folder",
      "apps/overlays/dev/secrets/db.yaml",
      secret(`data:\n  p: ENC[x]\n${SOPS}`),
      "no creation rule",
    ],
    [
      "a Secret whose values Flux substitutes",
      "infrastructure/base/monitoring/a.yaml",
      secret('stringData:\n  url: "${alert_webhook_url}"\n'),
      undefined,
    ],
    [
      "a Secret mixing a substitution and a value",
      "infrastructure/a.yaml",
      secret('stringData:\n  url: "${u}"\n  key: plain\n'),
      "is not SOPS-encrypted",
    ],
    [
      "a Secret with a substitution inside a value",
      "infrastructure/a.yaml",
      secret('stringData:\n  url: "https://${host}/x"\n'),
      "is not SOPS-encrypted",
    ],
    ["a ConfigMap", "apps/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n", undefined],
  ])("%s", (_, file, text, refusal) => {
    const findings = check.secretFindings([{ path: file, text }], rules());
    if (refusal === undefined) expect(findings).toEqual([]);
    else
      expect(findings).toEqual([expect.stringMatching(new RegExp(`^${file.replace(/\./g, "\\.")}: .*${refusal.replace(/\./g, "\\.")}`))]);
  });

  it("refuses every SOPS file when the repository has no .sops.yaml", () => {
    expect(
      check.secretFindings([{ path: "apps/overlays/staging/secrets/db.yaml", text: secret(`data:\n  p: ENC[x]\n${SOPS}`) }], undefined),
    ).toEqual([expect.stringContaining("apps/overlays/staging/secrets/db.yaml: SOPS-encrypted, but the repository has no .sops.yaml")]);
  });

  it("passes the starter as shipped (its one Secret holds only a substitution)", () => {
    const files = spawnSync("git", ["-C", GITOPS, "ls-files", "--cached", "--others", "--exclude-standard", "*.yaml"], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((file) => file && !file.startsWith("."))
      .map((file) => ({ path: file, text: fs.readFileSync(path.join(GITOPS, file), "utf8") }));
    expect(files.some(({ text }) => /^kind: Secret$/m.test(text))).toBe(true);
    expect(check.secretFindings(files, undefined)).toEqual([]);
  });
});

describe("substitution, as Flux's post-build does it", () => {
  it.each([
    ["${acme_email}", "a@example.com"],
    ["${missing}", ""],
    ["${missing:=fallback}", "fallback"],
    ["$${acme_email}", "${acme_email}"],
    ["mailto:${acme_email}", "mailto:a@example.com"],
  ])("%s -> %s", (text, out) => {
    expect(check.substitute([{ kind: "ConfigMap", data: { v: text } }], { acme_email: "a@example.com" })).toEqual([
      { kind: "ConfigMap", data: { v: out } },
    ]);
  });

  it("leaves an object annotated substitute: disabled alone", () => {
    const object = {
      kind: "ConfigMap",
      metadata: { annotations: { "kustomize.toolkit.fluxcd.io/substitute": "disabled" } },
      data: { v: "${x}" },
    };
    expect(check.substitute([object], { x: "y" })).toEqual([object]);
  });
});

describe("issuers", () => {
  const issuer = (kind: string, name: string, namespace?: string) => ({
    apiVersion: "cert-manager.io/v1",
    kind,
    metadata: { name, ...(namespace ? { namespace } : {}) },
  });
  const ingress = (annotations: Record<string, string>) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "podinfo", namespace: "acme-staging", annotations },
  });
  const infra = {
    label: "Kustomization infra-configs (path ./infrastructure/overlays/remote/configs)",
    objects: [issuer("ClusterIssuer", "tls-staging"), issuer("ClusterIssuer", "tls-production"), issuer("Issuer", "ns-ca", "acme-staging")],
  };
  const apps = (object: K8sObject) => ({ label: "Kustomization apps-acme-staging (path ./apps/overlays/acme-staging)", objects: [object] });

  it.each([
    ["an existing ClusterIssuer", { "cert-manager.io/cluster-issuer": "tls-staging" }, undefined],
    [
      "a ClusterIssuer no Kustomization defines",
      { "cert-manager.io/cluster-issuer": "tls-acme-staging" },
      'cluster remote, Kustomization apps-acme-staging (path ./apps/overlays/acme-staging): Ingress acme-staging/podinfo names ClusterIssuer "tls-acme-staging", which no Kustomization of this cluster defines (ClusterIssuers there: tls-production, tls-staging)',
    ],
    ["an Issuer in the Ingress's namespace", { "cert-manager.io/issuer": "ns-ca" }, undefined],
    ["an Issuer of another namespace", { "cert-manager.io/issuer": "tls-staging" }, "(Issuers in acme-staging there: acme-staging/ns-ca)"],
    [
      "issuer-kind ClusterIssuer",
      { "cert-manager.io/issuer": "tls-production", "cert-manager.io/issuer-kind": "ClusterIssuer" },
      undefined,
    ],
    ["no annotation (no certificate wanted)", {}, undefined],
  ])("Ingress naming %s", (_, annotations, refusal) => {
    const findings = check.issuerFindings("remote", [infra, apps(ingress(annotations))]);
    expect(findings).toEqual(refusal === undefined ? [] : [expect.stringContaining(refusal)]);
  });

  it("refuses a Certificate whose issuerRef names a missing ClusterIssuer, and says when the cluster has none", () => {
    const certificate = {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "c", namespace: "x" },
      spec: { issuerRef: { kind: "ClusterIssuer", name: "tls-dev" } },
    };
    expect(check.issuerFindings("bare", [apps(certificate)])).toEqual([
      expect.stringContaining('ClusterIssuer "tls-dev", which no Kustomization of this cluster defines (ClusterIssuers there: none)'),
    ]);
  });
});

describe("the command and its workflow", () => {
  it("prints its usage with --help, naming every option", () => {
    const result = spawnSync(process.execPath, [SCRIPT, "--help"], { encoding: "utf8" });
    expect(result.status).toBe(0);
    for (const option of ["--base", "--schemas", "--cache", "--repo", "--kustomize", "--kubeconform", "--var"])
      expect(result.stdout).toContain(option);
  });

  it("in a copy of gitops/ before its npm ci, says to run it, while --help needs nothing installed", () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-check-fresh-"));
    try {
      fs.cpSync(path.join(GITOPS, "scripts"), path.join(fresh, "scripts"), { recursive: true });
      fs.copyFileSync(path.join(GITOPS, "package.json"), path.join(fresh, "package.json"));
      const script = path.join(fresh, "scripts/check.mjs");
      const result = spawnSync(process.execPath, [script], { encoding: "utf8", cwd: fresh });
      expect(result.status).toBe(2);
      expect(result.stderr.trim()).toBe(`its dependency yaml is not installed: run npm ci in ${fs.realpathSync(fresh)} first`);
      expect(spawnSync(process.execPath, [script, "--help"], { encoding: "utf8" }).status).toBe(0);
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  });

  it("refuses an unknown option, pointing at --help", () => {
    const result = spawnSync(process.execPath, [SCRIPT, "--bse", "origin/main"], { encoding: "utf8", cwd: GITOPS });
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe("Unknown option '--bse' (--help lists the options)");
  });

  it("says how to install what is missing, and fails", () => {
    const result = spawnSync(
      process.execPath,
      [SCRIPT, "--kubeconform", "/nonexistent/kubeconform", "--kustomize", "/nonexistent/kustomize"],
      {
        encoding: "utf8",
        cwd: GITOPS,
      },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("go install sigs.k8s.io/kustomize/kustomize/v5@");
    expect(result.stderr).toContain("go install github.com/yannh/kubeconform/cmd/kubeconform@");
  });

  interface Step {
    uses?: string;
    run?: string;
  }
  const workflow = () =>
    parse(fs.readFileSync(path.join(GITOPS, ".github/workflows/check.yml"), "utf8")) as {
      on: Record<string, unknown>;
      jobs: { check: { steps: Step[] } };
    };

  it("runs on every pull request, with actions pinned by commit", () => {
    expect(Object.keys(workflow().on)).toEqual(["pull_request"]);
    expect(workflow().on.pull_request).toBeNull();
    const uses = workflow().jobs.check.steps.flatMap((step) => (step.uses ? [step.uses] : []));
    expect(uses.length).toBeGreaterThan(0);
    for (const action of uses) expect(action).toMatch(/^[\w-]+\/[\w-]+@[0-9a-f]{40}$/);
    expect(
      workflow()
        .jobs.check.steps.map((step) => step.run ?? "")
        .join("\n"),
    ).toContain('npm run check -- --base "origin/$BASE_REF"');
  });

  it("installs the kustomize and kubeconform the toolchain builds, at the versions the script names", () => {
    const run = workflow()
      .jobs.check.steps.map((step) => step.run ?? "")
      .join("\n");
    const script = fs.readFileSync(path.join(GITOPS, "scripts/check/run.mjs"), "utf8");
    for (const [module, dir] of [
      ["sigs.k8s.io/kustomize/kustomize/v5", "kustomize"],
      ["github.com/yannh/kubeconform", "kubeconform"],
    ]) {
      const goMod = fs.readFileSync(path.join(ROOT, "e2e/toolchain/gitops-check", dir, "go.mod"), "utf8");
      const version = new RegExp(`${module.replace(/\./g, "\\.")} (v[0-9.]+)`).exec(goMod)?.[1];
      expect(version, `${module} in e2e/toolchain/gitops-check/${dir}/go.mod`).toBeDefined();
      expect(run).toContain(`${module}`);
      expect(run).toMatch(new RegExp(`go install ${module.replace(/\./g, "\\.")}\\S*@${version}\\b`));
      expect(script).toMatch(new RegExp(`go install ${module.replace(/\./g, "\\.")}\\S*@${version}\\b`));
    }
  });
});

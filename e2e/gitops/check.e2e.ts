/**
 * The GitOps repository checks itself (issue 21 item 4): `npm run check` in a copy of gitops/ with
 * its own Git history, as a user's repository runs it, with the kustomize and kubeconform the
 * toolchain builds (e2e/toolchain/build.sh gitops-check) and the schemas of the pinned releases
 * given offline: Kubernetes' swagger.json from the k8s.io/kubernetes module, Flux's CRDs from its
 * controllers' modules (what the toolchain's flux-install assembles), cert-manager's from its module
 * at the chart version the starter pins, Traefik's from the chart in ../shared/upstream-data.
 *
 * The starter passes; each broken copy is refused by name, and a change shows in the diff under the
 * one cluster Kustomization it touches. It needs no cluster, so it lives apart from e2e/apiserver.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findUpstreamData } from "../../test/lib/k0sSchema";
import { TOOLCHAIN_BIN } from "../harness/toolchain";

const ROOT = path.resolve(__dirname, "../..");
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-check-e2e-"));
const cache = path.join(scratch, "cache");
let starter: string;
let schemaArgs: string[];

function sh(cwd: string, command: string, ...args: string[]): string {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
    },
  });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} in ${cwd}: ${result.stderr}`);
  return result.stdout;
}

/** A module's directory in the Go module cache, downloaded through the proxy if need be. */
function moduleDir(module: string): string {
  const out = JSON.parse(sh("/", "go", "mod", "download", "-json", module)) as { Dir?: string; Error?: string };
  if (out.Dir === undefined) throw new Error(`go mod download ${module}: ${out.Error}`);
  return out.Dir;
}

/** A copy of the starter (node_modules linked, its history kept), for one case to break. */
function copy(name: string): string {
  const dir = path.join(scratch, name);
  fs.cpSync(starter, dir, { recursive: true, filter: (src) => !src.endsWith("node_modules") });
  fs.symlinkSync(path.join(starter, "node_modules"), path.join(dir, "node_modules"));
  return dir;
}

function check(dir: string, ...args: string[]) {
  const result = spawnSync("npm", ["run", "--silent", "check", "--", "--cache", cache, ...schemaArgs, ...args], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, PATH: `${TOOLCHAIN_BIN}${path.delimiter}${process.env.PATH}` },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The refusals the check printed, one per line after "N problems:". */
const problems = (stderr: string) =>
  stderr
    .split("\n")
    .filter((line) => line.startsWith("  "))
    .map((line) => line.trim());

const edit = (dir: string, file: string, from: string | RegExp, to: string) => {
  const text = fs.readFileSync(path.join(dir, file), "utf8");
  const next = text.replace(from, to);
  if (next === text) throw new Error(`${file}: ${from} not found`);
  fs.writeFileSync(path.join(dir, file), next);
};

beforeAll(() => {
  for (const tool of ["kustomize", "kubeconform"]) {
    if (!fs.existsSync(path.join(TOOLCHAIN_BIN, tool))) throw new Error(`${tool} is not built: bash e2e/toolchain/build.sh gitops-check`);
  }
  const engine = fs.readFileSync(path.join(ROOT, "e2e/toolchain/engine.sh"), "utf8");
  const flux = /^FLUX_CONTROLLERS=\(([^)]*)\)/m.exec(engine)![1].split(/\s+/).filter(Boolean);
  const release = fs.readFileSync(path.join(ROOT, "gitops/infrastructure/base/controllers/cert-manager/release.yaml"), "utf8");
  const certManager = /version: "(v[0-9.]+)"/.exec(release)![1];
  const traefik = path.join(findUpstreamData().dir ?? "/nonexistent", "traefik-chart/traefik/crds");
  if (!fs.existsSync(traefik)) throw new Error(`no Traefik chart CRDs at ${traefik}`);
  const sources = [
    path.join(moduleDir("k8s.io/kubernetes@v1.36.3"), "api/openapi-spec/swagger.json"),
    ...flux.map((controller) => path.join(moduleDir(`github.com/fluxcd/${controller}`), "config/crd/bases")),
    path.join(moduleDir(`github.com/cert-manager/cert-manager@${certManager}`), "deploy/crds"),
    traefik,
  ];
  schemaArgs = sources.flatMap((source) => ["--schemas", source]);

  starter = path.join(scratch, "starter");
  fs.cpSync(path.join(ROOT, "gitops"), starter, { recursive: true, filter: (src) => !src.endsWith("node_modules") });
  sh(starter, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline");
  sh(starter, "git", "init", "-q", "-b", "main");
  fs.writeFileSync(path.join(starter, ".gitignore"), "node_modules/\n", { flag: "a" });
  sh(starter, "git", "add", "-A");
  sh(starter, "git", "commit", "-q", "-m", "starter");
}, 600_000);

afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe("npm run check", () => {
  it("passes the starter as shipped, every cluster rendered", () => {
    const result = check(starter);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    for (const cluster of ["local", "remote", "ssh"])
      expect(result.stdout).toMatch(new RegExp(`^cluster ${cluster}: 7 Kustomizations, [1-9][0-9]* objects rendered$`, "m"));
    expect(result.stdout).toContain("check passed");
  });

  it("refuses a misspelt field in a Deployment, under each cluster that applies it", () => {
    const dir = copy("typo-deployment");
    edit(dir, "apps/overlays/production/podinfo-deployment.yaml", /^ {2}replicas:/m, "  replica:");
    const result = check(dir);
    expect(result.status).toBe(1);
    expect(problems(result.stderr)).toEqual(
      ["remote", "ssh"].map(
        (cluster) =>
          `cluster ${cluster}, Kustomization apps-production (path ./apps/overlays/production): Deployment podinfo: /spec: additional properties 'replica' not allowed`,
      ),
    );
  });

  it("refuses a misspelt field in a Flux HelmRelease (a CRD's schema)", () => {
    const dir = copy("typo-helmrelease");
    edit(dir, "infrastructure/base/controllers/cert-manager/release.yaml", "  releaseName: cert-manager", "  releasename: cert-manager");
    const result = check(dir);
    expect(result.status).toBe(1);
    expect(problems(result.stderr)).toHaveLength(3);
    for (const line of problems(result.stderr))
      expect(line).toMatch(
        /Kustomization infra-controllers .*: HelmRelease cert-manager: \/spec: additional properties 'releasename' not allowed$/,
      );
  });

  it("refuses a plaintext Secret, naming its file", () => {
    const dir = copy("plaintext-secret");
    fs.writeFileSync(
      path.join(dir, "apps/overlays/staging/secrets/db.yaml"),
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n",
    );
    edit(dir, "apps/overlays/staging/secrets/kustomization.yaml", "resources: []", "resources:\n  - db.yaml");
    const result = check(dir);
    expect(result.status).toBe(1);
    expect(problems(result.stderr)).toEqual([
      "apps/overlays/staging/secrets/db.yaml: Secret db is not SOPS-encrypted; encrypt it (sops --encrypt --in-place apps/overlays/staging/secrets/db.yaml) before committing",
    ]);
  });

  it("refuses a resource file a kustomization.yaml lists but the folder lacks", () => {
    const dir = copy("missing-resource");
    edit(dir, "apps/overlays/dev/kustomization.yaml", "  - ../../base/podinfo", "  - ../../base/podinfo\n  - podinfo-pdb.yaml");
    const result = check(dir);
    expect(result.status).toBe(1);
    const [line, ...rest] = problems(result.stderr);
    expect(rest).toEqual([]);
    expect(line).toMatch(
      /^cluster local, Kustomization apps-dev \(path \.\/apps\/overlays\/dev\): kustomize build failed: .*'podinfo-pdb\.yaml'.*no such file or directory/,
    );
  });

  it("refuses a SOPS file that no .sops.yaml rule covers", () => {
    const dir = copy("sops-outside-rules");
    fs.writeFileSync(
      path.join(dir, ".sops.yaml"),
      "creation_rules:\n  - path_regex: (^|/)apps/overlays/staging/secrets/[^/]+\\.ya?ml$\n    encrypted_regex: ^(data|stringData)$\n    age: age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n",
    );
    const encrypted =
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: ENC[AES256_GCM,data:aGk=,type:str]\nsops:\n  version: 3.13.3\n";
    fs.writeFileSync(path.join(dir, "apps/overlays/staging/secrets/inside.yaml"), encrypted);
    fs.writeFileSync(path.join(dir, "apps/overlays/staging/db.yaml"), encrypted);
    const result = check(dir);
    expect(result.status).toBe(1);
    expect(problems(result.stderr)).toEqual([
      "apps/overlays/staging/db.yaml: SOPS-encrypted, but no creation rule of .sops.yaml matches its path; move it under a folder a rule covers (such as apps/overlays/<env>/secrets/) and re-encrypt it there",
    ]);
  });

  it("refuses a new client's overlay whose Ingress names an issuer its cluster lacks, listing those it has", () => {
    const dir = copy("client-issuer");
    fs.cpSync(path.join(dir, "apps/overlays/staging"), path.join(dir, "apps/overlays/acme-staging"), { recursive: true });
    edit(dir, "apps/overlays/acme-staging/kustomization.yaml", "namespace: staging", "namespace: acme-staging");
    edit(
      dir,
      "apps/overlays/acme-staging/podinfo-ingress.yaml",
      "cert-manager.io/cluster-issuer: tls-staging",
      "cert-manager.io/cluster-issuer: tls-acme-staging",
    );
    const apps = fs.readFileSync(path.join(dir, "clusters/remote/apps.yaml"), "utf8").split(/^---$/m)[0];
    fs.appendFileSync(
      path.join(dir, "clusters/remote/apps.yaml"),
      `---\n${apps.replace(/apps-staging/g, "apps-acme-staging").replace(/overlays\/staging/g, "overlays/acme-staging")}`,
    );
    const result = check(dir);
    expect(result.status).toBe(1);
    expect(problems(result.stderr)).toEqual(
      ["remote", "ssh"].map(
        (cluster) =>
          `cluster ${cluster}, Kustomization apps-acme-staging (path ./apps/overlays/acme-staging): Ingress acme-staging/podinfo names ClusterIssuer "tls-acme-staging", which no Kustomization of this cluster defines (ClusterIssuers there: tls-production, tls-staging)`,
      ),
    );
  });

  it("prints what a change does, under the one cluster Kustomization it touches", () => {
    const dir = copy("diff");
    sh(dir, "git", "checkout", "-q", "-b", "more-replicas");
    edit(dir, "apps/overlays/production/podinfo-deployment.yaml", /^ {2}replicas: 2$/m, "  replicas: 3");
    sh(dir, "git", "commit", "-q", "-am", "production: 3 replicas");
    const result = check(dir, "--base", "main");
    expect(result.status).toBe(0);
    const sections = result.stdout.split(/^(?=== )/m).filter((section) => section.startsWith("== "));
    const changed = sections.filter((section) => !section.split("\n")[0].endsWith(": no change"));
    expect(changed.map((section) => section.split("\n")[0])).toEqual(
      ["remote", "ssh"].map((cluster) => `== cluster ${cluster}: Kustomization apps-production (path ./apps/overlays/production)`),
    );
    for (const section of changed) {
      expect(section).toMatch(/^-  replicas: 2$/m);
      expect(section).toMatch(/^\+  replicas: 3$/m);
      expect(section.split("\n").filter((line) => /^[-+][^-+]/.test(line))).toHaveLength(2);
    }
    expect(sections.length).toBe(21);
  });
});

/**
 * The starter GitOps repository (gitops/) as a real Git repository on the test Git server, with a
 * working clone the tests commit to and push from, as a developer promotes a change.
 *
 * Test-only changes: a kustomize patch in the local infrastructure overlay points the Traefik
 * HelmRepository at the LAN chart server instead of traefik.github.io and picks the Traefik image
 * the toolchain can build (see e2e/toolchain/traefik/go.mod); and cert-manager with the local CA is
 * left out, because its images cannot be built here (the Go proxy refuses its cmd/* modules). The
 * Ingresses keep their TLS sections, so Traefik serves them with its default certificate.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import { ROOT } from "../harness/pulumiCli";
import { run } from "../harness/processes";
import type { GitopsServer } from "./gitopsServer";

export interface GitopsRepo {
  /** The URL Flux clones, as the node's pods see it. */
  readonly url: string;
  /** The developer's working clone on the workstation. */
  readonly workDir: string;
  /** Changes the working clone, commits and pushes to main; returns the new commit. */
  commit(message: string, change: (workDir: string) => void): string;
  /** The commit main points at on the server. */
  head(): string;
  /** Every Flux Kustomization the workstation cluster syncs: the program's root and what clusters/local declares. */
  kustomizations(): string[];
  git(...args: string[]): string;
}

const TEST_OVERLAY = "infrastructure/overlays/local/controllers";
const WITHOUT_CERT_MANAGER = [
  { kustomization: "infrastructure/base/controllers/kustomization.yaml", resource: "cert-manager" },
  { kustomization: "infrastructure/overlays/local/configs/kustomization.yaml", resource: "local-ca.yaml" },
];

export function createGitopsRepo(server: GitopsServer, chartServerUrl: string): GitopsRepo {
  const bare = path.join(server.gitRoot, "gitops.git");
  const workDir = path.join(path.dirname(server.gitRoot), "gitops-work");
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "e2e",
    GIT_AUTHOR_EMAIL: "e2e@k0s-platform.invalid",
    GIT_COMMITTER_NAME: "e2e",
    GIT_COMMITTER_EMAIL: "e2e@k0s-platform.invalid",
  };
  const git = (...args: string[]) => run("git", ["-C", workDir, ...args], { env }).trim();

  run("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare]);
  fs.cpSync(path.join(ROOT, "gitops"), workDir, { recursive: true });
  applyTestOverlay(workDir, chartServerUrl);
  run("git", ["init", "--quiet", "--initial-branch=main", workDir]);
  git("remote", "add", "origin", bare);
  git("add", "--all");
  git("commit", "--quiet", "-m", "Seed from k0s-platform's gitops/ starter");
  git("push", "--quiet", "origin", "main");

  return {
    url: `${server.url}/git/gitops.git`,
    workDir,
    git,
    commit(message, change) {
      change(workDir);
      git("add", "--all");
      git("commit", "--quiet", "-m", message);
      git("push", "--quiet", "origin", "main");
      return git("rev-parse", "HEAD");
    },
    head: () => run("git", ["-C", bare, "rev-parse", "main"]).trim(),
    kustomizations: () => ["flux-system", ...declaredKustomizations(path.join(workDir, "clusters", "local"))],
  };
}

function declaredKustomizations(clusterDir: string): string[] {
  const { resources } = parse(fs.readFileSync(path.join(clusterDir, "kustomization.yaml"), "utf8")) as { resources: string[] };
  return resources.flatMap((file) =>
    parseAllDocuments(fs.readFileSync(path.join(clusterDir, file), "utf8"))
      .map((doc) => doc.toJSON() as { kind: string; metadata: { name: string } })
      .filter((obj) => obj.kind === "Kustomization")
      .map((obj) => obj.metadata.name),
  );
}

function applyTestOverlay(workDir: string, chartServerUrl: string): void {
  const overlay = path.join(workDir, TEST_OVERLAY);
  fs.writeFileSync(path.join(overlay, "test-only-sources.yaml"), stringify([{ op: "replace", path: "/spec/url", value: chartServerUrl }]));
  fs.writeFileSync(
    path.join(overlay, "test-only-traefik-image.yaml"),
    stringify({
      apiVersion: "helm.toolkit.fluxcd.io/v2",
      kind: "HelmRelease",
      metadata: { name: "traefik", namespace: "traefik" },
      spec: { values: { image: { tag: "v3.6.12" } } },
    }),
  );
  const kustomizationPath = path.join(overlay, "kustomization.yaml");
  const kustomization = parse(fs.readFileSync(kustomizationPath, "utf8")) as { patches?: unknown[] };
  kustomization.patches = [
    ...(kustomization.patches ?? []),
    { path: "test-only-sources.yaml", target: { kind: "HelmRepository", name: "traefik" } },
    { path: "test-only-traefik-image.yaml", target: { kind: "HelmRelease", name: "traefik" } },
  ];
  fs.writeFileSync(kustomizationPath, stringify(kustomization));

  for (const { kustomization: file, resource } of WITHOUT_CERT_MANAGER) {
    const filePath = path.join(workDir, file);
    const config = parse(fs.readFileSync(filePath, "utf8")) as { resources: string[] };
    if (!config.resources.includes(resource)) throw new Error(`${file} no longer lists ${resource}; update the test overlay`);
    config.resources = config.resources.filter((entry) => entry !== resource);
    fs.writeFileSync(filePath, stringify(config));
  }
}

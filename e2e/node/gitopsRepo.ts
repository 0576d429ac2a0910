/**
 * The starter GitOps repository (gitops/) as a real Git repository on the test Git server, with a
 * working clone the tests commit to and push from, as a developer promotes a change.
 *
 * Test-only changes, each because something cannot be built here from served modules:
 * - a kustomize patch in the local infrastructure overlay points the Traefik HelmRepository at the
 *   LAN chart server instead of traefik.github.io and picks the Traefik image the toolchain can
 *   build (see e2e/toolchain/traefik/go.mod);
 * - cert-manager with the local CA is left out (the Go proxy refuses its cmd/* modules). The
 *   Ingresses keep their TLS sections, so Traefik serves them with its default certificate;
 * - kube-state-metrics is left out of the monitoring (refused by the proxy); the soak guard's
 *   restart data comes from the kubelet's cAdvisor metrics, which VictoriaMetrics scrapes anyway;
 * - the sample app: podinfo is refused, so a patch on apps/base/podinfo runs agnhost, the
 *   Kubernetes project's own end-to-end test server (served in k8s.io/kubernetes v1.36.3), in its
 *   place, with the same name, labels, port and probes. Its `porter` answers every request with a
 *   value from its environment: here podinfo's JSON shape, {hostname, namespace, message}, from the
 *   downward API and the overlay's PODINFO_UI_MESSAGE, so a response says which pod in which
 *   namespace served it and which banner its environment set.
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
const LEFT_OUT = [
  { kustomization: "infrastructure/base/controllers/kustomization.yaml", resource: "cert-manager" },
  { kustomization: "infrastructure/overlays/local/configs/kustomization.yaml", resource: "local-ca.yaml" },
  { kustomization: "infrastructure/base/monitoring/kustomization.yaml", resource: "kube-state-metrics.yaml" },
];
/** The sample app's image (e2e/toolchain/images.sh), in podinfo's place. */
export const SAMPLE_APP_IMAGE = "k0s-platform.local/agnhost:2.63.0";
const SAMPLE_APP_PORT = 9898;

export function createGitopsRepo(server: GitopsServer, chartServerUrl: string): GitopsRepo {
  return seedRepository(server, "gitops", (workDir) => {
    fs.cpSync(path.join(ROOT, "gitops"), workDir, { recursive: true });
    applyTestOverlay(workDir, chartServerUrl);
  });
}

/**
 * A second client's own repository, as a consultancy starts one from the starter: the sample app's
 * base (with the test's sample app) and `apps/overlays/<environment>`, made from dev's overlay.
 * Nothing of the platform: Flux follows it for that environment alone.
 */
export function createClientRepo(server: GitopsServer, platform: GitopsRepo, environment: string): GitopsRepo {
  return seedRepository(server, environment, (workDir) => {
    fs.cpSync(path.join(platform.workDir, "apps", "base"), path.join(workDir, "apps", "base"), { recursive: true });
    const overlay = path.join(workDir, "apps", "overlays", environment);
    fs.mkdirSync(overlay, { recursive: true });
    for (const file of ["kustomization.yaml", "priority.yaml", "podinfo-deployment.yaml", "podinfo-ingress.yaml"]) {
      const text = fs.readFileSync(path.join(platform.workDir, "apps", "overlays", "dev", file), "utf8");
      fs.writeFileSync(path.join(overlay, file), text.replace(/\bdev\b/g, environment));
    }
  });
}

/** A bare repository `<name>.git` on the server, seeded from a working clone that `fill` writes. */
function seedRepository(server: GitopsServer, name: string, fill: (workDir: string) => void): GitopsRepo {
  const bare = path.join(server.gitRoot, `${name}.git`);
  const workDir = path.join(path.dirname(server.gitRoot), `${name}-work`);
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "e2e",
    GIT_AUTHOR_EMAIL: "e2e@k0s-platform.invalid",
    GIT_COMMITTER_NAME: "e2e",
    GIT_COMMITTER_EMAIL: "e2e@k0s-platform.invalid",
  };
  const git = (...args: string[]) => run("git", ["-C", workDir, ...args], { env }).trim();

  run("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare]);
  fs.mkdirSync(workDir, { recursive: true });
  fill(workDir);
  run("git", ["init", "--quiet", "--initial-branch=main", workDir]);
  git("remote", "add", "origin", bare);
  git("add", "--all");
  git("commit", "--quiet", "-m", `Seed ${name}`);
  git("push", "--quiet", "origin", "main");

  return {
    url: `${server.gitUrl}/git/${name}.git`,
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
    kustomizations: () =>
      name === "gitops" ? ["flux-system", ...declaredKustomizations(path.join(workDir, "clusters", "local"))] : [name],
  };
}

/** Edits a YAML file of a working clone. */
export function editYaml(file: string, edit: (document: any) => void): void {
  const document = parse(fs.readFileSync(file, "utf8"));
  edit(document);
  fs.writeFileSync(file, stringify(document));
}

/** Writes `file` into a kustomize folder of a working clone and lists it in the folder's kustomization.yaml. */
export function addResource(folder: string, file: string, content: string): void {
  fs.writeFileSync(path.join(folder, file), content);
  const kustomizationPath = path.join(folder, "kustomization.yaml");
  const kustomization = parse(fs.readFileSync(kustomizationPath, "utf8")) as { resources: string[] };
  kustomization.resources.push(file);
  fs.writeFileSync(kustomizationPath, stringify(kustomization));
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
      metadata: { name: "traefik", namespace: "flux-system" },
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

  swapInSampleApp(workDir);
  for (const { kustomization: file, resource } of LEFT_OUT) {
    const filePath = path.join(workDir, file);
    const config = parse(fs.readFileSync(filePath, "utf8")) as { resources: string[] };
    if (!config.resources.includes(resource)) throw new Error(`${file} no longer lists ${resource}; update the test overlay`);
    config.resources = config.resources.filter((entry) => entry !== resource);
    fs.writeFileSync(filePath, stringify(config));
  }
}

/** Runs agnhost's porter in podinfo's Deployment, as a JSON 6902 patch in apps/base/podinfo. */
function swapInSampleApp(workDir: string): void {
  const base = path.join(workDir, "apps/base/podinfo");
  const env = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  // $(VAR) expands only variables defined earlier in the list, so these come after the overlay's message.
  const answer = JSON.stringify({ hostname: "$(POD_NAME)", namespace: "$(POD_NAMESPACE)", message: "$(PODINFO_UI_MESSAGE)" });
  const container = "/spec/template/spec/containers/0";
  fs.writeFileSync(
    path.join(base, "test-only-sample-app.yaml"),
    stringify([
      { op: "replace", path: `${container}/image`, value: SAMPLE_APP_IMAGE },
      { op: "replace", path: `${container}/command`, value: ["/agnhost", "porter"] },
      { op: "add", path: `${container}/env/-`, value: env("POD_NAME", "metadata.name") },
      { op: "add", path: `${container}/env/-`, value: env("POD_NAMESPACE", "metadata.namespace") },
      { op: "add", path: `${container}/env/-`, value: { name: `SERVE_PORT_${SAMPLE_APP_PORT}`, value: answer } },
    ]),
  );
  const kustomizationPath = path.join(base, "kustomization.yaml");
  const kustomization = parse(fs.readFileSync(kustomizationPath, "utf8")) as { patches?: unknown[] };
  kustomization.patches = [
    ...(kustomization.patches ?? []),
    { path: "test-only-sample-app.yaml", target: { kind: "Deployment", name: "podinfo" } },
  ];
  fs.writeFileSync(kustomizationPath, stringify(kustomization));
}

// What Flux would apply, rendered offline: every cluster's root folder, then each Flux Kustomization
// it names (kustomize build of spec.path, the Kustomization's own patches, images and
// targetNamespace, then its post-build substitution with sample values).
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { stringify } from "yaml";
import { substitute, yamlDocuments } from "./rules.mjs";

/**
 * Stand-ins for what the Pulumi program writes into flux-system's cluster-settings ConfigMap and
 * cluster-secrets Secret (components/lib/flux.ts), which a Kustomization's substituteFrom reads on
 * the cluster. Only the shape of what they produce is checked, never these values.
 */
export const SAMPLE_VARIABLES = {
  acme_email: "admin@example.com",
  alert_receiver: "webhook",
  alert_webhook_url: "https://alerts.example.invalid/webhook",
};

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const isFluxKustomization = (object) => object.kind === "Kustomization" && object.apiVersion?.startsWith("kustomize.toolkit.fluxcd.io/");

/** `kustomize build` with Flux's settings, or `kubectl kustomize` when `kustomize` is `kubectl`. */
export function kustomizeBuild(tools, dir) {
  const args = tools.kustomize.endsWith("kubectl") ? ["kustomize", dir] : ["build", dir];
  // Flux's kustomize-controller builds without kustomize's load restrictions.
  args.push("--load-restrictor", "LoadRestrictionsNone");
  const result = spawnSync(tools.kustomize, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (result.error !== undefined) throw new Error(`cannot run ${tools.kustomize}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`kustomize build failed: ${result.stderr.trim().replace(/\n+/g, "; ")}`);
  return yamlDocuments(result.stdout).docs;
}

/** Every YAML file below dir, relative to it, for a folder Flux builds without a kustomization.yaml. */
function yamlFiles(dir, prefix = "") {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) return yamlFiles(dir, path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

/** One Flux Kustomization rendered as Flux would: returns its objects, or throws naming what failed. */
export function renderKustomization(tools, root, spec, scratch) {
  const dir = resolve(root, spec.path ?? ".");
  if (relative(root, dir).startsWith("..")) throw new Error(`spec.path ${spec.path} leaves the repository`);
  if (!existsSync(dir)) throw new Error(`spec.path ${spec.path} does not exist`);
  let buildDir = dir;
  if (!KUSTOMIZATION_FILES.some((file) => existsSync(join(dir, file)))) {
    // Flux generates a kustomization.yaml of every manifest in the folder (kustomize create --autodetect --recursive).
    buildDir = mkdtempSync(join(scratch, "auto-"));
    cpSync(dir, buildDir, { recursive: true });
    writeFileSync(join(buildDir, "kustomization.yaml"), stringify({ resources: yamlFiles(buildDir) }));
  }
  let objects = kustomizeBuild(tools, buildDir);
  const { patches, images, targetNamespace } = spec;
  if (patches?.length || images?.length || targetNamespace) {
    const overlay = mkdtempSync(join(scratch, "overlay-"));
    writeFileSync(join(overlay, "rendered.yaml"), objects.map((object) => stringify(object)).join("---\n"));
    const kustomization = { apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources: ["rendered.yaml"] };
    if (targetNamespace) kustomization.namespace = targetNamespace;
    if (patches?.length) kustomization.patches = patches;
    if (images?.length) kustomization.images = images;
    writeFileSync(join(overlay, "kustomization.yaml"), stringify(kustomization));
    objects = kustomizeBuild(tools, overlay);
  }
  if (spec.postBuild !== undefined) {
    const fromCluster = (spec.postBuild.substituteFrom ?? []).length > 0 ? { ...SAMPLE_VARIABLES, ...tools.variables } : {};
    objects = substitute(objects, { ...fromCluster, ...(spec.postBuild.substitute ?? {}) });
  }
  // kustomize-controller decrypts SOPS files before applying them; the API server never sees `sops:`.
  return objects.map(({ sops, ...object }) => object);
}

/** The clusters of a repository: the folders under clusters/. */
export function clusterNames(root) {
  const dir = join(root, "clusters");
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/**
 * Every cluster's Flux Kustomizations, rendered: Map cluster -> [{ name, path, label, objects, error }],
 * starting from the root Kustomization the Pulumi program creates (flux-system, ./clusters/<cluster>)
 * and following each Flux Kustomization that syncs this repository (sourceRef GitRepository flux-system).
 */
export function renderRepository(tools, root) {
  const scratch = mkdtempSync(join(tmpdir(), "gitops-check-"));
  try {
    const out = new Map();
    for (const cluster of clusterNames(root)) {
      const rendered = [];
      const queue = [{ metadata: { name: "flux-system", namespace: "flux-system" }, spec: { path: `./clusters/${cluster}` } }];
      const seen = new Set();
      while (queue.length > 0) {
        const ks = queue.shift();
        const key = `${ks.metadata.namespace ?? "flux-system"}/${ks.metadata.name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const entry = {
          name: ks.metadata.name,
          path: ks.spec.path,
          label: `Kustomization ${ks.metadata.name} (path ${ks.spec.path})`,
          objects: [],
        };
        try {
          entry.objects = renderKustomization(tools, root, ks.spec, scratch);
        } catch (error) {
          entry.error = error.message;
        }
        rendered.push(entry);
        for (const object of entry.objects.filter(isFluxKustomization)) {
          const source = object.spec?.sourceRef ?? {};
          if (source.kind === "GitRepository" && source.name === "flux-system") queue.push(object);
          else entry.skipped = [...(entry.skipped ?? []), `${object.metadata?.name} (source ${source.kind}/${source.name})`];
        }
      }
      out.set(cluster, rendered);
    }
    return out;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The repository as `ref` has it, in a temporary folder (removed by the caller): `git archive` of
 * the folder this repository is in, so a copy kept in a subfolder of a larger repository works too.
 */
export function checkoutRef(root, ref) {
  const git = (...args) => spawnSync("git", ["-C", root, ...args], { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
  const prefix = git("rev-parse", "--show-prefix");
  if (prefix.status !== 0) throw new Error(`${root} is not in a Git repository: ${prefix.stderr.trim()}`);
  const verified = git("rev-parse", "--verify", "--quiet", `${ref}^{commit}`);
  if (verified.status !== 0)
    throw new Error(`--base ${ref}: no such commit here (fetch it first, e.g. git fetch origin ${ref.replace(/^origin\//, "")})`);
  const dir = mkdtempSync(join(tmpdir(), "gitops-check-base-"));
  const sub = prefix.stdout.trim().replace(/\/$/, "");
  const top = git("rev-parse", "--show-toplevel").stdout.trim();
  const archive = spawnSync("git", ["-C", top, "archive", "--format=tar", verified.stdout.trim(), ...(sub ? [sub] : [])], {
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (archive.status !== 0) throw new Error(`git archive ${ref} failed: ${archive.stderr.toString().trim()}`);
  const tar = spawnSync("tar", ["-x", "-C", dir], { input: archive.stdout });
  if (tar.status !== 0) throw new Error(`extracting ${ref} failed: ${tar.stderr.toString().trim()}`);
  const base = sub ? join(dir, sub) : dir;
  mkdirSync(base, { recursive: true });
  return { dir, base };
}

// Where the schemas come from: files given with --schemas (offline), or the upstream releases of
// what this repository pins, downloaded once into the cache. Either way they are converted into a
// schema folder in kubeconform's layout, kept in the cache under a hash of what it was made from.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parse } from "yaml";
import { crdSchemas, kubernetesSchemas, writeSchemas } from "./schemas.mjs";
import { yamlDocuments } from "./rules.mjs";

/** The Kubernetes release the platform targets (k0s v1.36.3+k0s.2 ships it); --kubernetes-version overrides. */
export const KUBERNETES_VERSION = "1.36.3";
/** The Flux release the Pulumi program installs (its flux install.yaml holds Flux's CRDs); --flux-version overrides. */
export const FLUX_VERSION = "v2.7.3";

/** Every file a --schemas path names: the file itself, or the YAML and JSON files below a folder. */
function filesUnder(path) {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(path, entry.name)) : /\.(ya?ml|json)$/.test(entry.name) ? [join(path, entry.name)] : [],
  );
}

/**
 * The schemas in local files: Kubernetes' OpenAPI v2 spec (swagger.json), CRDs (YAML, one or many
 * per file, anything else in it ignored, so Flux's install.yaml works as it is), a folder of either.
 */
export function loadSources(paths) {
  const swaggers = [];
  const crds = [];
  for (const file of paths.flatMap(filesUnder)) {
    const text = readFileSync(file, "utf8");
    if (file.endsWith(".json")) {
      const json = JSON.parse(text);
      if (json.swagger !== undefined && json.definitions !== undefined) swaggers.push(json);
      else if (json.kind === "CustomResourceDefinition") crds.push(json);
      continue;
    }
    crds.push(...yamlDocuments(text).docs.filter((doc) => doc.kind === "CustomResourceDefinition"));
  }
  return { swaggers, crds };
}

/**
 * The schema folder for these files, made once per content: kubeconform reads it through
 * SCHEMA_LOCATION. Returns its path and the kinds it holds.
 */
export function schemaDir(cacheDir, paths) {
  const files = paths.flatMap(filesUnder).sort();
  const hash = createHash("sha256");
  for (const file of files) hash.update(`${file}\0${statSync(file).size}\0${statSync(file).mtimeMs}\0`);
  const dir = join(cacheDir, "schemas", hash.digest("hex").slice(0, 16));
  if (existsSync(join(dir, ".complete"))) return dir;
  const { swaggers, crds } = loadSources(paths);
  if (swaggers.length === 0) throw new Error(`no Kubernetes OpenAPI spec (swagger.json) among --schemas ${paths.join(", ")}`);
  const scratch = `${dir}.${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  for (const swagger of swaggers) writeSchemas(scratch, kubernetesSchemas(swagger));
  for (const crd of crds) writeSchemas(scratch, crdSchemas(crd));
  writeFileSync(join(scratch, ".complete"), files.join("\n"));
  rmSync(dir, { recursive: true, force: true });
  renameSync(scratch, dir);
  return dir;
}

/** A URL's body, downloaded once into the cache. */
async function fetchCached(cacheDir, url) {
  const file = join(
    cacheDir,
    "downloads",
    `${createHash("sha256").update(url).digest("hex").slice(0, 16)}-${basename(new URL(url).pathname)}`,
  );
  if (existsSync(file)) return file;
  const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  if (!response.ok) throw new Error(`downloading ${url}: HTTP ${response.status}`);
  mkdirSync(join(cacheDir, "downloads"), { recursive: true });
  writeFileSync(`${file}.part`, Buffer.from(await response.arrayBuffer()));
  renameSync(`${file}.part`, file);
  return file;
}

/** A Helm chart's crds/ folder, extracted from the chart the HelmRepository's index lists at that version. */
async function chartCrds(cacheDir, repositoryUrl, chart, version) {
  const index = parse(readFileSync(await fetchCached(cacheDir, `${repositoryUrl.replace(/\/$/, "")}/index.yaml`), "utf8"));
  const entry = (index?.entries?.[chart] ?? []).find(
    (candidate) => candidate.version === version.replace(/^v/, "") || candidate.version === version,
  );
  if (entry === undefined) throw new Error(`chart ${chart} ${version} is not in ${repositoryUrl}/index.yaml`);
  const url = new URL(entry.urls[0], `${repositoryUrl.replace(/\/$/, "")}/`).href;
  const tgz = await fetchCached(cacheDir, url);
  const dir = `${tgz}.d`;
  if (!existsSync(dir)) {
    const scratch = mkdtempSync(join(tmpdir(), "gitops-check-chart-"));
    const tar = spawnSync("tar", ["-xzf", tgz, "-C", scratch]);
    if (tar.status !== 0) throw new Error(`extracting ${url}: ${tar.stderr.toString().trim()}`);
    renameSync(scratch, dir);
  }
  const crds = join(dir, chart, "crds");
  return existsSync(crds) ? [crds] : [];
}

/**
 * The upstream files for what the rendered repository pins, downloaded: Kubernetes' OpenAPI spec,
 * Flux's install.yaml, and each HelmRelease's CRDs (cert-manager's release asset, since its chart
 * templates them; any other chart's crds/ folder, from its HelmRepository).
 */
export async function downloadSources(cacheDir, rendered, versions) {
  const paths = [
    await fetchCached(
      cacheDir,
      `https://raw.githubusercontent.com/kubernetes/kubernetes/v${versions.kubernetes}/api/openapi-spec/swagger.json`,
    ),
    await fetchCached(cacheDir, `https://github.com/fluxcd/flux2/releases/download/${versions.flux}/install.yaml`),
  ];
  const objects = [...rendered.values()].flat().flatMap((entry) => entry.objects);
  const repositories = new Map(
    objects.filter((o) => o.kind === "HelmRepository").map((o) => [`${o.metadata?.namespace}/${o.metadata?.name}`, o.spec?.url]),
  );
  const charts = new Map();
  for (const release of objects.filter((o) => o.kind === "HelmRelease" && o.spec?.chart?.spec !== undefined)) {
    const { chart, version, sourceRef } = release.spec.chart.spec;
    const url = repositories.get(`${sourceRef?.namespace ?? release.metadata?.namespace}/${sourceRef?.name}`);
    if (sourceRef?.kind === "HelmRepository" && url !== undefined && !url.startsWith("oci://"))
      charts.set(`${chart}@${version}`, { chart, version, url });
  }
  for (const { chart, version, url } of charts.values()) {
    if (chart === "cert-manager") {
      paths.push(
        await fetchCached(cacheDir, `https://github.com/cert-manager/cert-manager/releases/download/${version}/cert-manager.crds.yaml`),
      );
    } else paths.push(...(await chartCrds(cacheDir, url, chart, version)));
  }
  return paths;
}

// The body of npm run check (check.mjs reads the options and says what the check does).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, join, relative, resolve } from "node:path";
import { stringify } from "yaml";
import { checkoutRef, renderRepository, SAMPLE_VARIABLES } from "./render.mjs";
import { issuerFindings, secretFindings, sopsPathRules } from "./rules.mjs";
import { SCHEMA_LOCATION } from "./schemas.mjs";
import { downloadSources, FLUX_VERSION, KUBERNETES_VERSION, schemaDir } from "./sources.mjs";

const INSTALL = {
  kustomize:
    "go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.2 (or put kubectl on PATH: the check uses kubectl kustomize when kustomize is missing)",
  kubeconform: "go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0",
};

/** A program on PATH (or a path to one), or undefined. */
function which(program) {
  if (program.includes("/")) return existsSync(program) ? resolve(program) : undefined;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) if (dir && existsSync(join(dir, program))) return join(dir, program);
  return undefined;
}

function tools(values) {
  const kustomize = which(values.kustomize ?? "kustomize") ?? (values.kustomize === undefined ? which("kubectl") : undefined);
  const kubeconform = which(values.kubeconform ?? "kubeconform");
  const missing = [];
  if (kustomize === undefined) missing.push(`kustomize is not on PATH: ${INSTALL.kustomize}`);
  if (kubeconform === undefined) missing.push(`kubeconform is not on PATH: ${INSTALL.kubeconform}`);
  if (missing.length > 0) {
    console.error(`${missing.join("\n")}\n(go install puts them in $(go env GOPATH)/bin; add that to PATH.)`);
    process.exit(2);
  }
  const variables = Object.fromEntries(
    (values.var ?? []).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
  );
  return { kustomize, kubeconform, variables };
}

/** The repository's YAML files as { path, text }, paths relative to root; dot-folders and node_modules skipped. */
function yamlFiles(root, prefix = "") {
  return readdirSync(join(root, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) return entry.name.startsWith(".") || entry.name === "node_modules" ? [] : yamlFiles(root, path);
    return /\.ya?ml$/.test(entry.name) ? [{ path, text: readFileSync(join(root, path), "utf8") }] : [];
  });
}

const objectName = (o) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata?.name}`;

/** kubeconform over every rendered Kustomization: one message per invalid object, naming where it came from. */
function validate(tools, schemas, rendered) {
  const scratch = mkdtempSync(join(tmpdir(), "gitops-check-validate-"));
  try {
    const origin = new Map();
    for (const [cluster, entries] of rendered) {
      entries.forEach((entry, i) => {
        if (entry.objects.length === 0) return;
        const file = join(scratch, cluster, `${i}-${entry.name}.yaml`);
        mkdirSync(join(scratch, cluster), { recursive: true });
        writeFileSync(file, entry.objects.map((object) => stringify(object)).join("---\n"));
        origin.set(file, `cluster ${cluster}, ${entry.label}`);
      });
    }
    if (origin.size === 0) return [];
    const result = spawnSync(
      tools.kubeconform,
      ["-strict", "-output", "json", "-schema-location", join(schemas, SCHEMA_LOCATION), ...origin.keys()],
      { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
    );
    let report;
    try {
      report = JSON.parse(result.stdout);
    } catch {
      return [`kubeconform failed: ${(result.stderr || result.stdout).trim()}`];
    }
    return (
      (report.resources ?? [])
        .filter((resource) => resource.status === "statusInvalid" || resource.status === "statusError")
        .map((resource) => {
          const details = (resource.validationErrors ?? []).map((error) => `${error.path || "/"}: ${error.msg}`);
          const why = details.length > 0 ? details.join("; ") : resource.msg;
          return `${origin.get(resource.filename) ?? resource.filename}: ${resource.kind} ${resource.name}: ${why}`;
        })
        // kubeconform's workers finish in any order.
        .sort()
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const sortKey = (o) => `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
const asText = (entry) =>
  entry === undefined
    ? ""
    : [...entry.objects]
        .sort((a, b) => sortKey(a).localeCompare(sortKey(b)))
        .map((o) => stringify(o))
        .join("---\n");

/** What the change does to each cluster's rendered Kustomizations, as unified diffs. */
async function printDiff(base, head, ref) {
  // Loaded only for a diff, so the rest runs beside any copy of yaml (the Pulumi project's tests).
  const { createTwoFilesPatch } = await import("diff");
  console.log(`\nWhat changes against ${ref} (rendered objects; substitutions use sample values):`);
  for (const cluster of [...new Set([...base.keys(), ...head.keys()])].sort()) {
    const before = new Map((base.get(cluster) ?? []).map((entry) => [entry.name, entry]));
    const after = new Map((head.get(cluster) ?? []).map((entry) => [entry.name, entry]));
    for (const name of [...new Set([...before.keys(), ...after.keys()])]) {
      const a = before.get(name);
      const b = after.get(name);
      const title = `== cluster ${cluster}: Kustomization ${name} (path ${(b ?? a).path})`;
      if (asText(a) === asText(b)) {
        console.log(`${title}: no change`);
        continue;
      }
      console.log(`${title}${a === undefined ? ": new" : b === undefined ? ": removed" : ""}`);
      const patch = createTwoFilesPatch(`${ref}/${cluster}/${name}`, `working tree/${cluster}/${name}`, asText(a), asText(b), "", "", {
        context: 3,
      });
      process.stdout.write(
        patch
          .split("\n")
          .filter((line) => !/^(Index:|====)/.test(line))
          .join("\n"),
      );
    }
  }
}

/** The check, with the options check.mjs read: prints what it found and sets the exit code. */
export async function run(options) {
  const values = {
    ...options,
    "kubernetes-version": options["kubernetes-version"] ?? KUBERNETES_VERSION,
    "flux-version": options["flux-version"] ?? FLUX_VERSION,
  };
  const root = resolve(values.repo);
  const cache = resolve(values.cache ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "gitops-check"));
  const kit = tools(values);
  if (!existsSync(join(root, "clusters")))
    throw new Error(`${root} has no clusters/ folder: run the check from the GitOps repository's root (or pass --repo)`);

  const rendered = renderRepository(kit, root);
  const findings = [];
  for (const [cluster, entries] of rendered) {
    for (const entry of entries) if (entry.error !== undefined) findings.push(`cluster ${cluster}, ${entry.label}: ${entry.error}`);
    findings.push(...issuerFindings(cluster, entries));
  }
  const sopsYaml = join(root, ".sops.yaml");
  findings.push(...secretFindings(yamlFiles(root), sopsPathRules(existsSync(sopsYaml) ? readFileSync(sopsYaml, "utf8") : undefined)));
  const sources =
    values.schemas?.map((path) => resolve(path)) ??
    (await downloadSources(cache, rendered, { kubernetes: values["kubernetes-version"], flux: values["flux-version"] }));
  findings.push(...validate(kit, schemaDir(cache, sources), rendered));

  for (const [cluster, entries] of rendered) {
    const count = entries.reduce((sum, entry) => sum + entry.objects.length, 0);
    console.log(`cluster ${cluster}: ${entries.length} Kustomizations, ${count} objects rendered`);
    for (const entry of entries)
      for (const skipped of entry.skipped ?? []) console.log(`  not checked: ${skipped}, another source than this repository`);
  }
  const used = Object.keys(SAMPLE_VARIABLES).filter((name) => !(name in kit.variables));
  if (used.length > 0)
    console.log(`substituted with sample values: ${used.map((name) => `\${${name}}`).join(", ")} (the clusters get the stacks' values)`);

  if (values.base !== undefined) {
    const { dir, base } = checkoutRef(root, values.base);
    try {
      await printDiff(renderRepository(kit, base), rendered, values.base);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (findings.length > 0) {
    console.error(`\n${findings.length} problem${findings.length === 1 ? "" : "s"}:`);
    for (const finding of findings) console.error(`  ${finding}`);
    process.exitCode = 1;
  } else console.log("\ncheck passed");
}

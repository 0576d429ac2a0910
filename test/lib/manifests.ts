/**
 * Pure helpers for the GitOps starter tests: YAML loading, schema validation, a strict subset of
 * kustomize, and the quota arithmetic. Nothing here touches a cluster or Pulumi.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import * as core from "kubernetes-models/v1";
import * as admission from "kubernetes-models/admissionregistration.k8s.io/v1";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as autoscaling from "kubernetes-models/autoscaling/v2";
import * as batch from "kubernetes-models/batch/v1";
import * as networking from "kubernetes-models/networking.k8s.io/v1";
import * as policy from "kubernetes-models/policy/v1";
import * as rbac from "kubernetes-models/rbac.authorization.k8s.io/v1";
import * as scheduling from "kubernetes-models/scheduling.k8s.io/v1";
import * as certManagerV1 from "@kubernetes-models/cert-manager/cert-manager.io/v1";
import * as helmV2beta2 from "@kubernetes-models/flux-cd/helm.toolkit.fluxcd.io/v2beta2";
import * as kustomizeV1 from "@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1";
import * as notificationV1 from "@kubernetes-models/flux-cd/notification.toolkit.fluxcd.io/v1";
import * as sourceV1 from "@kubernetes-models/flux-cd/source.toolkit.fluxcd.io/v1";
import * as sourceV1beta2 from "@kubernetes-models/flux-cd/source.toolkit.fluxcd.io/v1beta2";
import { ALERT_WEBHOOK_URL_VARIABLE } from "../../components/lib/flux";
import { parseQuantity } from "../../components/lib/validation";

/** A parsed YAML document that is a mapping. */
export type Obj = Record<string, unknown>;

export const KUSTOMIZE_CONFIG_API = "kustomize.config.k8s.io/v1beta1";
const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

export const isObj = (value: unknown): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value);
export const field = (value: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>((at, key) => (isObj(at) ? at[key] : undefined), value);
/** A YAML scalar as text, or `fallback` when the field is absent or not a scalar. */
const scalar = (value: unknown, fallback: string): string =>
  typeof value === "string" || typeof value === "number" ? String(value) : fallback;
export const nameOf = (obj: Obj): string => String(field(obj, "metadata", "name"));
export const idOf = (obj: Obj): string => `${String(obj.kind)}/${nameOf(obj)}`;

/**
 * Every YAML file under `root` that Flux could apply, sorted so test names are stable: the repository's
 * own tooling (its CI workflows under .github, node_modules) is not for the cluster.
 */
export function yamlFiles(root: string): string[] {
  return fs
    .readdirSync(root, { recursive: true, encoding: "utf8" })
    .filter((file) => /\.ya?ml$/.test(file) && !file.split(path.sep).some((part) => part.startsWith(".") || part === "node_modules"))
    .map((file) => path.join(root, file))
    .sort();
}

/** The non-empty documents of a YAML file; throws on syntax errors instead of returning partial data. */
export function readDocuments(file: string): unknown[] {
  return parseAllDocuments(fs.readFileSync(file, "utf8")).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    return value === null ? [] : [value];
  });
}

interface ModelClass {
  readonly apiVersion: unknown;
  readonly kind: unknown;
  new (data: never): { validate(): void };
}

const isModelClass = (value: unknown): value is ModelClass =>
  typeof value === "function" && typeof (value as Partial<ModelClass>).apiVersion === "string";

const KUBERNETES_MODULES = [core, admission, { CustomResourceDefinition }, apps, autoscaling, batch, networking, policy, rbac, scheduling];
/** Only GA Flux APIs are registered, so a deprecated beta apiVersion has no validator and fails. */
const FLUX_MODULES = [kustomizeV1, notificationV1, sourceV1];
const VALIDATORS = new Map(
  [...KUBERNETES_MODULES, ...FLUX_MODULES, certManagerV1]
    .flatMap((module) => Object.values(module).filter(isModelClass))
    .map((model) => [`${String(model.apiVersion)}/${String(model.kind)}`, model]),
);

/**
 * @kubernetes-models/flux-cd 2.3.4 predates Flux's GA HelmRelease (helm.toolkit.fluxcd.io/v2) and
 * HelmRepository (source.toolkit.fluxcd.io/v1), and its 3.x line requires Node 22. The GA specs keep
 * every field these manifests use, so those objects are checked against the last beta schema.
 */
const GA_SCHEMA_STAND_INS: ReadonlyMap<string, ModelClass> = new Map<string, ModelClass>([
  ["helm.toolkit.fluxcd.io/v2/HelmRelease", helmV2beta2.HelmRelease],
  ["source.toolkit.fluxcd.io/v1/HelmRepository", sourceV1beta2.HelmRepository],
]);

/** Validates one object against its schema; throws naming the object when it has none or fails it. */
export function validateObject(obj: Obj): void {
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  const standIn = GA_SCHEMA_STAND_INS.get(key);
  const model = standIn ?? VALIDATORS.get(key);
  if (model === undefined) throw new Error(`${key} ${nameOf(obj)}: no schema validator for this apiVersion/kind`);
  if (typeof field(obj, "metadata", "name") !== "string") throw new Error(`${key}: metadata.name is missing`);
  let data: Obj = standIn === undefined ? obj : { ...obj, apiVersion: String(standIn.apiVersion) };
  // SOPS ciphertext (`ENC[...]`) is not base64, so the schema's `format: byte` would reject it.
  if (obj.kind === "Secret" && isObj(obj.sops) && isObj(obj.data)) {
    data = { ...data, data: Object.fromEntries(Object.keys(obj.data).map((k) => [k, ""])) };
  }
  try {
    new model(data as never).validate();
  } catch (error) {
    throw new Error(`${key} ${nameOf(obj)}: ${(error as Error).message}`);
  }
}

/** Why a Secret would reach Git readable, or undefined when it is SOPS-encrypted throughout. */
export function plaintextSecretError(obj: Obj): string | undefined {
  if (obj.kind !== "Secret") return undefined;
  const values = [obj.data, obj.stringData].flatMap((map) => (isObj(map) ? Object.values(map) : []));
  // Values Flux fills in from the cluster-secrets Secret the Pulumi program writes: Git holds their names only.
  const fromClusterSecrets = new RegExp(`^\\$\\{${ALERT_WEBHOOK_URL_VARIABLE}\\}$`);
  if (values.length > 0 && values.every((value) => fromClusterSecrets.test(String(value)))) return undefined;
  if (!isObj(obj.sops) || typeof obj.sops.mac !== "string") return `Secret ${nameOf(obj)} has no sops block`;
  const clear = values.filter((value) => !/^ENC\[/.test(String(value)));
  return clear.length > 0 ? `Secret ${nameOf(obj)} has ${clear.length} unencrypted value(s)` : undefined;
}

/** The kustomization file of `dir`, if it is a kustomize directory. */
export function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((file) => path.join(dir, file)).find((file) => fs.existsSync(file));
}

interface PatchEntry {
  readonly path?: string;
  readonly target?: { readonly kind?: string; readonly name?: string };
}

/** Keys the renderer understands; anything else would be applied by Flux but skipped here. */
const SUPPORTED_KEYS = ["apiVersion", "kind", "namespace", "resources", "patches", "images"];
/** Kinds without a namespace, which kustomize's namespace field leaves alone. */
const CLUSTER_SCOPED = [
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "ClusterIssuer",
  "PriorityClass",
  "StorageClass",
];

interface ImageEntry {
  readonly name: string;
  readonly newName?: string;
  readonly newTag?: string;
}

/**
 * Renders a kustomize directory the way kustomize would for `resources`, `patches` (strategic merge
 * or JSON 6902), `images` and `namespace`, and throws on a missing path, a patch or image that
 * matches nothing, or any other kustomization field. Every file read is added to `visited`.
 */
export function build(dir: string, visited: Set<string> = new Set()): Obj[] {
  const file = kustomizationFile(dir);
  if (file === undefined) throw new Error(`${dir}: no kustomization.yaml`);
  visited.add(file);
  const [config] = readDocuments(file);
  if (!isObj(config) || config.apiVersion !== KUSTOMIZE_CONFIG_API || config.kind !== "Kustomization") {
    throw new Error(`${file}: not a ${KUSTOMIZE_CONFIG_API} Kustomization`);
  }
  const unsupported = Object.keys(config).filter((key) => !SUPPORTED_KEYS.includes(key));
  if (unsupported.length > 0) throw new Error(`${file}: unsupported field(s) ${unsupported.join(", ")}`);

  const objects = ((config.resources ?? []) as string[]).flatMap((entry) => {
    const target = path.resolve(dir, entry);
    if (!fs.existsSync(target)) throw new Error(`${file}: resource ${entry} does not exist`);
    if (fs.statSync(target).isDirectory()) return build(target, visited);
    visited.add(target);
    return readDocuments(target).map((doc) => structuredClone(doc) as Obj);
  });

  for (const entry of (config.patches ?? []) as PatchEntry[]) {
    if (entry.path === undefined) throw new Error(`${file}: inline patches are not supported; use path`);
    const patchFile = path.resolve(dir, entry.path);
    if (!fs.existsSync(patchFile)) throw new Error(`${file}: patch ${entry.path} does not exist`);
    visited.add(patchFile);
    const [patch] = readDocuments(patchFile);
    const kind = entry.target?.kind ?? field(patch, "kind");
    // A target without a name selects every object of its kind, as kustomize's does.
    const name = entry.target !== undefined ? entry.target.name : field(patch, "metadata", "name");
    patchTargets(objects, kind, name, patch, `${file}: patch ${entry.path}`);
  }

  const images = (config.images ?? []) as ImageEntry[];
  const containers =
    images.length === 0
      ? []
      : podTemplates(objects).flatMap(({ spec }) => [...containersOf(spec, "initContainers"), ...containersOf(spec, "containers")]);
  for (const image of images) {
    const matching = containers.filter((container) => String(container.image).replace(/[:@].*$/, "") === image.name);
    if (matching.length === 0) throw new Error(`${file}: images entry ${image.name} matches no container`);
    for (const container of matching)
      container.image = `${image.newName ?? image.name}:${image.newTag ?? String(container.image).split(":")[1]}`;
  }
  setNamespace(objects, config.namespace);
  return objects;
}

/**
 * Replaces each object of `kind` and `name` with `patch` applied to it (a list is JSON 6902, a
 * mapping a strategic merge, as kustomize reads them); `where` names the patch when none matches.
 */
function patchTargets(objects: Obj[], kind: unknown, name: unknown, patch: unknown, where: string): void {
  const targets = objects.filter((obj) => obj.kind === kind && (name === undefined || nameOf(obj) === name));
  if (targets.length === 0) throw new Error(`${where} targets ${String(kind)}/${String(name)}, which no resource provides`);
  for (const obj of targets) {
    const patched = Array.isArray(patch) ? applyJsonPatch(obj, patch as JsonPatchOp[]) : strategicMerge(obj, patch);
    objects[objects.indexOf(obj)] = patched as Obj;
  }
}

/** Puts every namespaced object in `namespace`, as kustomize's `namespace` and Flux's `targetNamespace` do. */
function setNamespace(objects: readonly Obj[], namespace: unknown): void {
  if (typeof namespace !== "string") return;
  for (const obj of objects) if (!CLUSTER_SCOPED.includes(String(obj.kind))) (obj.metadata as Obj).namespace = namespace;
}

/**
 * What a Flux Kustomization applies: its path rendered, then its inline `patches` (each must match
 * an object), then its `targetNamespace`. `root` is the repository the path is relative to. Given
 * `variables`, a Kustomization with `postBuild` has its `${name}` references replaced, and one the
 * variables lack is an error; without them, references stay as written.
 */
export function fluxApplied(root: string, kustomization: Obj, variables?: Readonly<Record<string, string>>): Obj[] {
  const spec = kustomization.spec as Obj;
  const objects = build(path.join(root, String(spec.path)));
  for (const { patch, target } of (spec.patches ?? []) as { patch: string; target: { kind: string; name: string } }[]) {
    const [document] = parseAllDocuments(patch).map((doc) => doc.toJS() as unknown);
    patchTargets(objects, target.kind, target.name, document, `${nameOf(kustomization)}: patch`);
  }
  setNamespace(objects, spec.targetNamespace);
  if (variables === undefined || spec.postBuild === undefined) return objects;
  return JSON.parse(JSON.stringify(objects), (_key, value: unknown) =>
    typeof value === "string"
      ? value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
          if (!(name in variables)) throw new Error(`${nameOf(kustomization)}: no value for \${${name}}`);
          return variables[name];
        })
      : value,
  ) as Obj[];
}

/**
 * Strategic merge as kustomize applies it to the fields used here: maps merge, and lists whose
 * items all carry a `name` (containers, env, ports, volumes) merge by name; other lists are replaced.
 */
export function strategicMerge(base: unknown, patch: unknown): unknown {
  if (isObj(base) && isObj(patch)) {
    const merged: Obj = { ...base };
    for (const [key, value] of Object.entries(patch)) merged[key] = value === null ? undefined : strategicMerge(base[key], value);
    return Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined));
  }
  const named = (list: unknown): list is Obj[] => Array.isArray(list) && list.every((item) => isObj(item) && "name" in item);
  if (named(base) && named(patch)) {
    const merged = base.map((item) => {
      const update = patch.find((p) => p.name === item.name);
      return update === undefined ? item : (strategicMerge(item, update) as Obj);
    });
    return [...merged, ...patch.filter((p) => !base.some((item) => item.name === p.name))];
  }
  return structuredClone(patch);
}

export interface JsonPatchOp {
  readonly op: "add" | "replace" | "remove";
  readonly path: string;
  readonly value?: unknown;
}

/** RFC 6902 add/replace/remove; throws when a path does not resolve, as kustomize does. */
export function applyJsonPatch(doc: Obj, ops: readonly JsonPatchOp[]): Obj {
  const result = structuredClone(doc);
  for (const { op, path: pointer, value } of ops) {
    const keys = pointer.split("/").map((key) => key.replace(/~1/g, "/").replace(/~0/g, "~"));
    keys.shift();
    const last = keys.pop();
    const parent = keys.reduce<unknown>((at, key) => (isObj(at) || Array.isArray(at) ? (at as Obj)[key] : undefined), result);
    if (last === undefined || !(isObj(parent) || Array.isArray(parent))) throw new Error(`json patch: ${pointer} does not resolve`);
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (!Number.isInteger(index) || index > parent.length || (op !== "add" && index >= parent.length)) {
        throw new Error(`json patch: ${pointer} is out of range`);
      }
      parent.splice(index, op === "add" ? 0 : 1, ...(op === "remove" ? [] : [structuredClone(value)]));
    } else {
      if (op !== "add" && !(last in parent)) throw new Error(`json patch: ${pointer} does not exist`);
      if (op === "remove") delete parent[last];
      else parent[last] = structuredClone(value);
    }
  }
  return result;
}

/** The ResourceQuota keys the environments constrain. */
export const QUOTA_KEYS = ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods"] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];

/** `pods`: how many can exist at once, counting a rolling update's surge. */
type PodTemplate = { readonly owner: string; readonly pods: number; readonly spec: Obj };

/** Pod templates of the workloads; throws on a pod-owning kind whose replica count it cannot know. */
export function podTemplates(objects: readonly Obj[]): PodTemplate[] {
  return objects.flatMap((obj): PodTemplate[] => {
    const spec = field(obj, "spec", "template", "spec");
    if (!isObj(spec)) {
      if (field(obj, "spec", "jobTemplate") !== undefined) throw new Error(`${idOf(obj)}: CronJob is not budgeted`);
      return [];
    }
    const replicas = Number(field(obj, "spec", "replicas") ?? 1);
    if (obj.kind === "StatefulSet") return [{ owner: idOf(obj), pods: replicas, spec }];
    if (obj.kind !== "Deployment") throw new Error(`${idOf(obj)}: only Deployments and StatefulSets are budgeted`);
    if (field(obj, "spec", "strategy", "type") === "Recreate") return [{ owner: idOf(obj), pods: replicas, spec }];
    // Kubernetes' default maxSurge is 25%, rounded up.
    const surge = scalar(field(obj, "spec", "strategy", "rollingUpdate", "maxSurge"), "25%");
    const extra = surge.endsWith("%") ? Math.ceil((replicas * Number(surge.slice(0, -1))) / 100) : Number(surge);
    return [{ owner: idOf(obj), pods: replicas + extra, spec }];
  });
}

const containersOf = (spec: Obj, key: "containers" | "initContainers"): Obj[] => (Array.isArray(spec[key]) ? (spec[key] as Obj[]) : []);

/** One message per container that leaves a cpu/memory request or limit unset, or requests above its limit. */
export function containerResourceErrors(objects: readonly Obj[]): string[] {
  return podTemplates(objects).flatMap(({ owner, spec }) =>
    [...containersOf(spec, "initContainers"), ...containersOf(spec, "containers")].flatMap((container) =>
      (["cpu", "memory"] as const).flatMap((resource) => {
        const where = `${owner} container ${String(container.name)} ${resource}`;
        const request = parseQuantity(String(field(container, "resources", "requests", resource)));
        const limit = parseQuantity(String(field(container, "resources", "limits", resource)));
        if (request === undefined || limit === undefined) return [`${where}: request and limit must both be set`];
        return request > limit ? [`${where}: request is above the limit`] : [];
      }),
    ),
  );
}

/**
 * Worst-case quota use of the workloads. A pod counts the larger of its containers' sum and its
 * biggest init container, as the scheduler does; cpu in millicores and memory in bytes, rounded.
 */
export function quotaUsage(objects: readonly Obj[]): Record<QuotaKey, number> {
  const usage = Object.fromEntries(QUOTA_KEYS.map((key) => [key, 0])) as Record<QuotaKey, number>;
  for (const { pods, spec } of podTemplates(objects)) {
    usage.pods += pods;
    for (const kind of ["requests", "limits"] as const) {
      for (const resource of ["cpu", "memory"] as const) {
        const amount = (container: Obj): number => parseQuantity(scalar(field(container, "resources", kind, resource), "0")) ?? 0;
        const sum = containersOf(spec, "containers").reduce((total, c) => total + amount(c), 0);
        const init = Math.max(0, ...containersOf(spec, "initContainers").map(amount));
        usage[`${kind}.${resource}`] += pods * Math.max(sum, init);
      }
    }
  }
  usage["requests.cpu"] = Math.round(usage["requests.cpu"] * 1000);
  usage["limits.cpu"] = Math.round(usage["limits.cpu"] * 1000);
  return usage;
}

/** The quota keys that `usage` exceeds, each with both numbers (cpu in millicores); absent keys are unlimited. */
export function quotaOverruns(usage: Readonly<Record<QuotaKey, number>>, hard: Readonly<Obj>): string[] {
  return QUOTA_KEYS.flatMap((key) => {
    // A bare `cpu`/`memory` quota key means the request, as in the ResourceQuota API.
    const value = hard[key] ?? hard[key.replace("requests.", "")];
    if (value === undefined) return [];
    const allowed = (parseQuantity(scalar(value, "")) ?? NaN) * (key.endsWith(".cpu") ? 1000 : 1);
    return usage[key] <= allowed ? [] : [`${key}: uses ${usage[key]}, quota allows ${allowed}`];
  });
}

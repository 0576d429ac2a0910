// Kubernetes' and the CRDs' schemas as kubeconform reads them: one standalone, strict JSON Schema per
// kind and version (no $ref, unknown fields refused), in the layout SCHEMA_LOCATION names. Pure apart
// from writeSchemas, which writes them out.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** kubeconform's -schema-location, below the directory writeSchemas fills (core kinds land in v1/). */
export const SCHEMA_LOCATION = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json";

/** Where kubeconform looks for a kind's schema: SCHEMA_LOCATION for this group, version and kind. */
export function schemaFile(group, version, kind) {
  return `${group === "" ? version : group}/${kind.toLowerCase()}_${version}.json`;
}

// Keywords OpenAPI and JSON Schema share with the same meaning; everything else is translated or
// dropped (descriptions, x-kubernetes-* markers, and `format`, which OpenAPI uses for types such as
// int64 and byte that JSON Schema validators either ignore or read differently).
const KEPT = [
  "type",
  "enum",
  "required",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "multipleOf",
  "uniqueItems",
  "const",
];

/**
 * One OpenAPI (v2 definition or v3 structural) schema node as strict JSON Schema. `resolve` inlines
 * a $ref (it returns undefined on a cycle, which is left open). `nullableByDefault` is for
 * Kubernetes' own API, where every optional field may be written as null; a CRD says so per field.
 */
export function toStrictSchema(node, { resolve = () => undefined, nullableByDefault = false, root = true } = {}) {
  if (node === null || typeof node !== "object") return {};
  if (typeof node.$ref === "string") return resolve(node.$ref) ?? {};
  const out = {};
  for (const key of KEPT) if (node[key] !== undefined) out[key] = node[key];
  const opts = { resolve, nullableByDefault, root: false };
  if (node.properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(node.properties).map(([name, schema]) => [name, toStrictSchema(schema, opts)]));
  }
  if (node.items !== undefined) out.items = toStrictSchema(node.items, opts);
  for (const key of ["anyOf", "oneOf", "allOf"])
    if (Array.isArray(node[key])) out[key] = node[key].map((schema) => toStrictSchema(schema, opts));
  if (node.not !== undefined) out.not = toStrictSchema(node.not, opts);
  const open = node["x-kubernetes-preserve-unknown-fields"] === true;
  if (typeof node.additionalProperties === "object") out.additionalProperties = toStrictSchema(node.additionalProperties, opts);
  else if (node.additionalProperties !== undefined) out.additionalProperties = node.additionalProperties;
  // Strict: an object that lists its fields takes no others (the API server would prune or refuse
  // them); in a CRD, so does one that lists none (structural pruning keeps nothing of it). Kubernetes'
  // own untyped objects (RawExtension) stay open.
  else if (!open && (node.properties !== undefined || (node.type === "object" && !nullableByDefault))) out.additionalProperties = false;
  // OpenAPI v3.0 spells exclusive bounds as flags on minimum/maximum; JSON Schema as numbers.
  for (const [flag, bound] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ]) {
    if (node[flag] === true) {
      out[flag] = node[bound];
      delete out[bound];
    }
  }
  if (node["x-kubernetes-int-or-string"] === true || node.format === "int-or-string") {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (!root && (node.nullable === true || nullableByDefault)) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    else if (Array.isArray(out.anyOf)) out.anyOf = [...out.anyOf, { type: "null" }];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

// Quantities ("100m", 2) are strings in the OpenAPI spec, yet a number is what people write and the
// API server accepts.
const QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/**
 * Kubernetes' OpenAPI v2 spec (api/openapi-spec/swagger.json) -> Map of schemaFile -> schema, one per
 * group/version/kind it defines, every $ref inlined.
 */
export function kubernetesSchemas(swagger) {
  const definitions = swagger.definitions ?? {};
  const resolving = new Set();
  const resolve = (ref) => {
    const name = ref.replace(/^#\/definitions\//, "");
    if (name === QUANTITY) return { anyOf: [{ type: "string" }, { type: "number" }, { type: "null" }] };
    if (resolving.has(name) || definitions[name] === undefined) return undefined;
    resolving.add(name);
    try {
      return toStrictSchema(definitions[name], { resolve, nullableByDefault: true, root: false });
    } finally {
      resolving.delete(name);
    }
  };
  const out = new Map();
  for (const [name, definition] of Object.entries(definitions)) {
    const gvks = definition["x-kubernetes-group-version-kind"] ?? [];
    // Shared envelopes (DeleteOptions, WatchEvent) name every group; they are never a manifest.
    if (gvks.length !== 1) continue;
    resolving.add(name);
    const schema = toStrictSchema(definition, { resolve, nullableByDefault: true });
    resolving.delete(name);
    const { group, version, kind } = gvks[0];
    out.set(schemaFile(group, version, kind), schema);
  }
  return out;
}

/** A CustomResourceDefinition -> Map of schemaFile -> schema, one per version that has a schema. */
export function crdSchemas(crd) {
  const out = new Map();
  const { group, names, versions = [] } = crd.spec ?? {};
  for (const version of versions) {
    const openApi = version.schema?.openAPIV3Schema;
    if (openApi === undefined || group === undefined || names?.kind === undefined) continue;
    const schema = toStrictSchema(openApi);
    // metadata is ObjectMeta, which a CRD cannot describe; the API server checks it.
    if (schema.properties?.metadata !== undefined) schema.properties.metadata = { type: "object" };
    out.set(schemaFile(group, version.name, names.kind), schema);
  }
  return out;
}

/** Writes every schema below `dir` in SCHEMA_LOCATION's layout. */
export function writeSchemas(dir, schemas) {
  for (const [file, schema] of schemas) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), JSON.stringify(schema));
  }
}

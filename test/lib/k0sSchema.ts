/**
 * k0s's own ClusterConfig schema (the CRD k0s publishes) as a strict JSON Schema, so every k0s
 * config the project ships or renders is checked the way k0s reads it: k0s decodes its config file
 * with strict YAML (unknown fields are an error), and the API server prunes fields its structural
 * schema does not name. Pure: reads the CRD files, creates no resources.
 *
 * The CRDs are upstream data files in `../shared/upstream-data/k0s-clusterconfig-v<version>/`
 * (each with a SOURCE.md), beside the repository's clone; nothing here is built from them.
 */
import Ajv, { ErrorObject, ValidateFunction } from "ajv";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

const REPO_ROOT = path.resolve(__dirname, "../..");
const CRD_FILE = "static/_crds/k0s/k0s.k0sproject.io_clusterconfigs.yaml";
const SCHEMA_DIR = /^k0s-clusterconfig-(v[0-9]+\.[0-9]+\.[0-9]+)$/;

type Schema = Record<string, unknown>;

/**
 * Set by `.ci/run`: there the upstream data must be beside the clone, so a test that reads it fails
 * when it is missing; anywhere else (a user's clone, a fork's CI) such a test is skipped.
 */
export const UPSTREAM_DATA_REQUIRED_ENV = "K0S_PLATFORM_UPSTREAM_DATA";

/** The `upstream-data` folder of a `shared/` directory beside the repository or further up, if any. */
export function findUpstreamData(from: string = REPO_ROOT): { dir?: string; looked: string[] } {
  const looked: string[] = [];
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "shared", "upstream-data");
    looked.push(candidate);
    if (fs.existsSync(candidate)) return { dir: candidate, looked };
    if (path.dirname(dir) === dir) return { looked };
  }
}

/**
 * The `upstream-data` folder of the `shared/` directory beside the repository (`<clone>/../shared`),
 * or of the nearest one further up. Throws, saying where it looked, when there is none.
 */
export function upstreamDataDir(from: string = REPO_ROOT): string {
  const { dir, looked } = findUpstreamData(from);
  if (dir !== undefined) return dir;
  throw new Error(
    `k0s's ClusterConfig schema is read from ../shared/upstream-data/k0s-clusterconfig-v*/ beside the ` +
      `repository's clone, and there is none: looked in ${looked.join(", ")}. Put a copy of shared/ next to the clone.`,
  );
}

/**
 * Why the tests that read upstream data are skipped, or undefined when they run: they run where the
 * data is, and where `.ci/run` requires it (so that its absence fails them there, by name).
 */
export function upstreamDataSkipReason(
  from: string = REPO_ROOT,
  required: boolean = process.env[UPSTREAM_DATA_REQUIRED_ENV] === "required",
): string | undefined {
  if (required || findUpstreamData(from).dir !== undefined) return undefined;
  return (
    "k0s's ClusterConfig schema checks need the team's shared/upstream-data beside the clone, and there is none " +
    `(the project's CI has it and sets ${UPSTREAM_DATA_REQUIRED_ENV}=required, which fails them without it)`
  );
}

/** The k0s versions whose ClusterConfig CRD is in `upstream-data`, oldest first (such as `v1.36.3`). */
export function availableSchemaVersions(dataDir: string = upstreamDataDir()): string[] {
  const versions = fs
    .readdirSync(dataDir)
    .map((entry) => SCHEMA_DIR.exec(entry)?.[1])
    .filter((version): version is string => version !== undefined && fs.existsSync(crdPath(version, dataDir)));
  const key = (version: string) => version.slice(1).split(".").map(Number);
  return versions.sort((a, b) => key(a).reduce((order, part, i) => order || part - key(b)[i], 0));
}

/** Path of k0s `version`'s ClusterConfig CRD. */
export function crdPath(version: string, dataDir: string = upstreamDataDir()): string {
  return path.join(dataDir, `k0s-clusterconfig-${version}`, CRD_FILE);
}

/**
 * The schema for the k0s release that reads a config (`v1.35.4+k0s.0` -> `v1.35.4`): the newest one
 * of the same minor line, since a patch release does not change the API. Throws when there is none.
 */
export function schemaVersionFor(k0sRelease: string, available: readonly string[] = availableSchemaVersions()): string {
  const minor = /^v([0-9]+\.[0-9]+)\./.exec(k0sRelease)?.[1];
  const match = available.filter((version) => version.startsWith(`v${minor}.`)).at(-1);
  if (minor === undefined || match === undefined) {
    throw new Error(
      `no k0s ClusterConfig schema for ${k0sRelease} in upstream-data (have ${available.join(", ")}): add k0s-clusterconfig-v${minor}.x`,
    );
  }
  return match;
}

/** Go RE2 bracket classes that JavaScript's RegExp lacks, as the ranges they stand for. */
const POSIX_CLASSES: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  digit: "0-9",
  lower: "a-z",
  upper: "A-Z",
  space: "\\t\\n\\v\\f\\r ",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

/** A Go (RE2) pattern as a JavaScript one; both are unanchored searches, as the API server uses them. */
export function goPatternToJs(pattern: string): string {
  return pattern.replace(/\[:([a-z]+):\]/g, (whole, name: string) => {
    const range = POSIX_CLASSES[name];
    if (range === undefined) throw new Error(`unsupported POSIX class ${whole} in pattern ${pattern}`);
    return range;
  });
}

/** Keywords copied as they are; documentation keywords are dropped; anything else is an error. */
const KEPT = ["type", "required", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"];
const KEPT_MORE = ["minProperties", "maxProperties", "multipleOf", "uniqueItems", "format"];
const DROPPED = ["description", "default", "example", "title", "x-kubernetes-list-map-keys", "x-kubernetes-map-type"];
const HANDLED = [
  "properties",
  "items",
  "additionalProperties",
  "pattern",
  "nullable",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "anyOf",
  "oneOf",
  "allOf",
  "not",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-int-or-string",
  "x-kubernetes-list-type",
];

/**
 * An OpenAPI v3 structural schema node (as in a CRD) as a strict JSON Schema node: an object with
 * `properties` (or with neither properties nor a value schema) takes no other fields unless it has
 * x-kubernetes-preserve-unknown-fields, as the API server prunes them; int-or-string takes either;
 * `nullable` admits null; a `set` list refuses duplicates and a `map` list duplicate keys. A keyword
 * this does not know (such as CEL's x-kubernetes-validations) is an error, never silently ignored.
 */
export function structuralToJsonSchema(node: Schema, at = "openAPIV3Schema"): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (KEPT.includes(key) || KEPT_MORE.includes(key)) out[key] = value;
    else if (!DROPPED.includes(key) && !HANDLED.includes(key)) throw new Error(`${at}: schema keyword ${key} is not supported`);
  }
  const child = (schema: unknown, where: string) => structuralToJsonSchema(schema as Schema, where);
  if (node.properties !== undefined) {
    out.properties = Object.fromEntries(
      Object.entries(node.properties as Record<string, Schema>).map(([name, schema]) => [name, child(schema, `${at}.${name}`)]),
    );
  }
  if (node.items !== undefined) out.items = child(node.items, `${at}[]`);
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (node[key] !== undefined) out[key] = (node[key] as Schema[]).map((schema, i) => child(schema, `${at}.${key}[${i}]`));
  }
  if (node.not !== undefined) out.not = child(node.not, `${at}.not`);
  if (typeof node.additionalProperties === "object") out.additionalProperties = child(node.additionalProperties, `${at}.*`);
  else if (node.additionalProperties !== undefined) out.additionalProperties = node.additionalProperties;
  else if (node.type === "object" && node["x-kubernetes-preserve-unknown-fields"] !== true) out.additionalProperties = false;
  if (typeof node.pattern === "string") out.pattern = goPatternToJs(node.pattern);
  // OpenAPI v3.0 spells exclusive bounds as flags on minimum/maximum.
  for (const [flag, bound] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ]) {
    if (node[flag] === true) {
      out[flag] = node[bound];
      delete out[bound];
    }
  }
  if (node["x-kubernetes-int-or-string"] === true) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (node.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
    if (Array.isArray(out.anyOf)) out.anyOf = [...out.anyOf, { type: "null" }];
  }
  const listType = node["x-kubernetes-list-type"];
  if (listType === "set") out.uniqueItems = true;
  if (listType === "map") out.uniqueKeys = node["x-kubernetes-list-map-keys"] ?? [];
  return out;
}

/**
 * The CRD's `openAPIV3Schema` as JSON Schema. `metadata` is Kubernetes' ObjectMeta, which a CRD
 * cannot describe (the API server checks it itself): here its common fields are typed and the rest
 * left open.
 */
export function clusterConfigJsonSchema(crd: Schema): Schema {
  const versions = (crd.spec as { versions?: { name: string; schema?: { openAPIV3Schema?: Schema } }[] }).versions ?? [];
  const openApi = versions.find((version) => version.name === "v1beta1")?.schema?.openAPIV3Schema;
  if (openApi === undefined) throw new Error("the ClusterConfig CRD has no v1beta1 openAPIV3Schema");
  const schema = structuralToJsonSchema(openApi);
  const stringMap = { type: "object", additionalProperties: { type: "string" } };
  (schema.properties as Record<string, Schema>).metadata = {
    type: "object",
    properties: { name: { type: "string" }, namespace: { type: "string" }, labels: stringMap, annotations: stringMap },
  };
  return schema;
}

/** `/spec/workerProfiles/0/values` -> `spec.workerProfiles[0].values`. */
function fieldPath(pointer: string, child?: string): string {
  const parts = pointer
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (child !== undefined) parts.push(child);
  return parts.reduce((out, part) => (/^[0-9]+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part), "") || "(root)";
}

function describeError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "additionalProperties":
      return `${fieldPath(error.instancePath, String(params.additionalProperty))}: unknown field`;
    case "enum":
      return `${fieldPath(error.instancePath)}: must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "required":
      return `${fieldPath(error.instancePath, String(params.missingProperty))}: required`;
    default:
      return `${fieldPath(error.instancePath)}: ${error.message}`;
  }
}

/** Checks a parsed k0s config; returns one message per problem, each naming the field, or none. */
export type ClusterConfigCheck = (config: unknown) => string[];

/** A strict check of a JSON Schema made by structuralToJsonSchema (formats and keywords it uses included). */
export function compileCheck(schema: Schema): ClusterConfigCheck {
  const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
  ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addKeyword({
    keyword: "uniqueKeys",
    type: "array",
    schemaType: "array",
    error: { message: (cxt) => `has two items with the same ${(cxt.schema as string[]).join(", ")}` },
    validate: (keys: string[], items: unknown[]) => {
      const seen = items.map((item) => JSON.stringify(keys.map((key) => (item as Record<string, unknown> | null)?.[key])));
      return new Set(seen).size === seen.length;
    },
  });
  const validate: ValidateFunction = ajv.compile(schema);
  return (config) => (validate(config) ? [] : (validate.errors ?? []).map(describeError));
}

const checks = new Map<string, ClusterConfigCheck>();

/** The strict check for k0s `version`'s ClusterConfig (such as `v1.36.3`), compiled once. */
export function clusterConfigCheck(version: string, dataDir: string = upstreamDataDir()): ClusterConfigCheck {
  const file = crdPath(version, dataDir);
  const cached = checks.get(file);
  if (cached) return cached;
  if (!fs.existsSync(file)) throw new Error(`no k0s ClusterConfig CRD for ${version}: ${file} is missing`);
  const check = compileCheck(clusterConfigJsonSchema(parse(fs.readFileSync(file, "utf8")) as Schema));
  checks.set(file, check);
  return check;
}

/**
 * Typed readers for raw Pulumi config values. Pulumi hands the program strings (objects and lists
 * JSON-encoded) at the top level and JSON values inside objects; each reader accepts both and records
 * a message naming the key, the value and what is allowed instead of throwing, so one run reports
 * every mistake at once.
 */

/** Collects config problems and throws them together. */
export class ConfigErrors {
  private readonly messages: string[] = [];

  constructor(private readonly project: string) {}

  /** `message` continues the key, as in "is required". */
  add(key: string, message: string): void {
    this.messages.push(`${this.project}:${key} ${message}`);
  }

  /** The value given for `key` is refused, and why. */
  refuse(key: string, value: string, why: string): void {
    this.messages.push(`${this.project}:${key}: ${value} ${why}`);
  }

  addRaw(message: string): void {
    this.messages.push(message);
  }

  throwIfAny(): void {
    if (this.messages.length > 0) {
      throw new Error(`Invalid stack configuration:\n  - ${this.messages.join("\n  - ")}`);
    }
  }
}

/** Records that the string `value` of `key` is refused, and why. */
export function fail(errors: ConfigErrors, key: string, value: string, why: string): void {
  errors.refuse(key, `"${value}"`, why);
}

function describe(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : JSON.stringify(value);
}

/** A string; top-level values arrive as strings, nested ones as JSON values. */
export function asString(errors: ConfigErrors, key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  errors.refuse(key, describe(value), `must be a string`);
  return undefined;
}

/** A string where empty means unset. */
export function optionalString(errors: ConfigErrors, key: string, value: unknown): string | undefined {
  const text = asString(errors, key, value);
  return text === "" ? undefined : text;
}

export function asBoolean(errors: ConfigErrors, key: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "boolean") return value;
  if (value === "true" || value === "false") return value === "true";
  errors.refuse(key, describe(value), `must be true or false`);
  return undefined;
}

/** A whole number; top-level values arrive as strings, nested ones as JSON numbers. */
export function asInteger(errors: ConfigErrors, key: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number = typeof value === "string" && /^-?[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof number === "number" && Number.isInteger(number)) return number;
  errors.refuse(key, describe(value), `must be a whole number`);
  return undefined;
}

export function oneOf<T extends string>(errors: ConfigErrors, key: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  if (value === undefined) errors.add(key, `is required; allowed: ${allowed.join(", ")}`);
  else errors.refuse(key, describe(value), `is not allowed; allowed: ${allowed.join(", ")}`);
  return undefined;
}

function decode(errors: ConfigErrors, key: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    errors.refuse(key, describe(value), `is not valid JSON/YAML structured config`);
    return undefined;
  }
}

/** A JSON object (a YAML map in the stack file). */
export function asObject(errors: ConfigErrors, key: string, value: unknown, shape: string): Record<string, unknown> | undefined {
  if (value === undefined || value === null) {
    errors.add(key, `is required: ${shape}`);
    return undefined;
  }
  const decoded = decode(errors, key, value);
  if (decoded === undefined) return undefined;
  if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
    errors.refuse(key, describe(decoded), `must be ${shape}`);
    return undefined;
  }
  return decoded as Record<string, unknown>;
}

export function asStringList(errors: ConfigErrors, key: string, value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const decoded = decode(errors, key, value);
  if (Array.isArray(decoded) && decoded.every((item) => typeof item === "string")) return decoded;
  if (decoded !== undefined) errors.refuse(key, describe(decoded), `must be a list of strings`);
  return undefined;
}

/** A map of quantities as ResourceQuota `spec.hard` holds them; YAML numbers (pods: 20) become strings. */
export function asStringMap(errors: ConfigErrors, key: string, value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    errors.refuse(key, describe(value), `must be a map such as { requests.cpu: "1", pods: "20" }`);
    return undefined;
  }
  const map: Record<string, string> = {};
  for (const [entryKey, entryValue] of Object.entries(value as Record<string, unknown>)) {
    if (typeof entryValue === "string") map[entryKey] = entryValue;
    else if (typeof entryValue === "number" && Number.isFinite(entryValue)) map[entryKey] = String(entryValue);
    else errors.refuse(`${key}.${entryKey}`, describe(entryValue), `must be a quantity such as "500m" or "2Gi"`);
  }
  return map;
}

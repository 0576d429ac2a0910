/** Reading what `pulumi stack export --show-secrets` prints. Pure. */

/** How the export marks a secret value: the marker key, beside its plaintext, JSON-encoded. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** `value` with every secret in it (at any depth) replaced by its plaintext value. */
export function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  if (SECRET_SIG in record) return revealed(JSON.parse(String(record.plaintext)));
  return Object.fromEntries(Object.entries(record).map(([key, entry]) => [key, revealed(entry)]));
}

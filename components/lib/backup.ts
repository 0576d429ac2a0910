/**
 * Scheduled `k0s backup` on the remote and ssh hosts, uploaded to S3-compatible storage
 * (DigitalOcean Spaces for the remote stack, any S3 endpoint for ssh): the `backup` settings, and
 * the host's script, systemd units and install step. Pure: creates no resources.
 */
import { posix } from "node:path";
import { asInteger, asObject, asString, ConfigErrors, fail, optionalString } from "./configReader";
import { shellQuote } from "./k0s";

/** What the host runs, where it keeps its settings (credentials included, 0600) and what it uploaded. */
export const BACKUP_SCRIPT_PATH = "/usr/local/sbin/k0s-platform-backup";
export const BACKUP_ENV_PATH = "/etc/k0s-platform/backup.env";
export const BACKUP_LIST_PATH = "/var/lib/k0s-platform/backups.list";
export const BACKUP_UNIT = "k0s-platform-backup";

const BACKUP_KEYS = ["endpoint", "bucket", "region", "prefix", "schedule", "retention", "accessKeyId"];
const DEFAULT_SCHEDULE = "*-*-* 03:00:00";
const DEFAULT_RETENTION = 14;

export interface BackupConfig {
  /** https:// base URL of the S3 API, such as https://fra1.digitaloceanspaces.com. */
  readonly endpoint: string;
  readonly bucket: string;
  /** The region requests are signed for. */
  readonly region: string;
  /** Where in the bucket this cluster's archives go. */
  readonly prefix: string;
  /** systemd OnCalendar expression, such as `*-*-* 03:00:00` (daily, 03:00 host time). */
  readonly schedule: string;
  /** How many archives are kept; older ones are deleted after each upload. */
  readonly retention: number;
  readonly accessKeyId: string;
  /** From the secret `backupSecretAccessKey`. */
  readonly secretAccessKey: string;
}

/**
 * The `backup` block and `backupSecretAccessKey`. The remote stack defaults to Spaces in the
 * droplet's region; the ssh stack names its endpoint. Nothing set, no backups.
 */
export function parseBackup(
  errors: ConfigErrors,
  raw: Readonly<Record<string, string>>,
  defaults: { endpoint?: string; region: string; prefix: string },
): BackupConfig | undefined {
  const secretAccessKey = raw.backupSecretAccessKey ?? "";
  if (raw.backup === undefined || raw.backup === "") {
    if (secretAccessKey !== "") errors.add("backupSecretAccessKey", "goes with a backup block, which is not set");
    return undefined;
  }
  const backup = asObject(errors, "backup", raw.backup, `an object { ${BACKUP_KEYS.join(", ")} } (bucket and accessKeyId required)`);
  if (backup === undefined) return undefined;
  for (const key of Object.keys(backup)) {
    if (!BACKUP_KEYS.includes(key)) errors.add(`backup.${key}`, `is not a backup setting; allowed: ${BACKUP_KEYS.join(", ")}`);
  }
  const endpoint = asString(errors, "backup.endpoint", backup.endpoint) ?? defaults.endpoint ?? "";
  if (endpoint === "")
    errors.add("backup.endpoint", "is required for the ssh target: your S3 endpoint, such as https://s3.eu-central-1.amazonaws.com");
  else if (!/^https:\/\/[A-Za-z0-9.-]+(:[0-9]+)?$/.test(endpoint)) {
    fail(errors, "backup.endpoint", endpoint, "must be an https:// endpoint with no path: a backup holds the cluster's keys and secrets");
  }
  const bucket = asString(errors, "backup.bucket", backup.bucket) ?? "";
  if (bucket === "") errors.add("backup.bucket", "is required: the bucket (a Space) the archives go into");
  else if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) fail(errors, "backup.bucket", bucket, "must be an S3 bucket name");
  const region = asString(errors, "backup.region", backup.region) ?? defaults.region;
  if (!/^[a-z0-9-]+$/.test(region)) fail(errors, "backup.region", region, "must be a region name such as fra1 or eu-central-1");
  const prefix = asString(errors, "backup.prefix", backup.prefix) ?? defaults.prefix;
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(prefix))
    fail(errors, "backup.prefix", prefix, "must be a folder in the bucket, such as acme/remote");
  const schedule = asString(errors, "backup.schedule", backup.schedule) ?? DEFAULT_SCHEDULE;
  if (!/^[A-Za-z0-9*,:/. ~-]+$/.test(schedule)) {
    fail(errors, "backup.schedule", schedule, "must be a systemd calendar expression such as daily or *-*-* 03:00:00");
  }
  const retention = asInteger(errors, "backup.retention", backup.retention) ?? DEFAULT_RETENTION;
  if (retention < 1 || retention > 1000) errors.refuse("backup.retention", String(retention), "must keep from 1 to 1000 archives");
  const accessKeyId = optionalString(errors, "backup.accessKeyId", backup.accessKeyId) ?? "";
  if (!/^[A-Za-z0-9]+$/.test(accessKeyId))
    errors.add("backup.accessKeyId", "is required: the access key id of a key that can write the bucket");
  if (secretAccessKey === "") {
    errors.add("backupSecretAccessKey", "is required with a backup block: pulumi config set --secret backupSecretAccessKey <secret>");
  } else if (!/^[A-Za-z0-9+/=_-]+$/.test(secretAccessKey)) {
    // Never echoed: it is a secret.
    errors.add("backupSecretAccessKey", "must be an access key's secret (letters, digits and + / = _ -)");
  }
  return { endpoint, bucket, region, prefix, schedule, retention, accessKeyId, secretAccessKey };
}

/** The host's settings file, credentials included: handed to the install step on stdin, never in a command line. */
export function backupEnvironment(backup: BackupConfig): string {
  const variables: Record<string, string | number> = {
    BACKUP_ENDPOINT: backup.endpoint,
    BACKUP_BUCKET: backup.bucket,
    BACKUP_REGION: backup.region,
    BACKUP_PREFIX: backup.prefix,
    BACKUP_RETENTION: backup.retention,
    BACKUP_ACCESS_KEY_ID: backup.accessKeyId,
    BACKUP_SECRET_ACCESS_KEY: backup.secretAccessKey,
  };
  return Object.entries(variables)
    .map(([name, value]) => `${name}=${shellQuote(String(value))}\n`)
    .join("");
}

/**
 * One backup: `k0s backup` into a scratch folder, the archive uploaded (curl's own SigV4 signing,
 * the credentials passed to curl on a file descriptor, never its command line), then the oldest
 * archives this host uploaded deleted until `retention` remain.
 */
export function backupScript(): string {
  return [
    "#!/bin/bash",
    "# k0s-platform: one backup of this k0s cluster, uploaded to S3-compatible storage (README, Backups).",
    "set -euo pipefail",
    `. ${BACKUP_ENV_PATH}`,
    `list=${BACKUP_LIST_PATH}`,
    'work=$(mktemp -d "$(dirname "$list")/backup.XXXXXX")',
    "trap 'rm -rf \"$work\"' EXIT",
    'k0s backup --save-path "$work"',
    "archive=$(find \"$work\" -maxdepth 1 -name 'k0s_backup_*.tar.gz' -print -quit)",
    '[ -n "$archive" ] || { echo "k0s backup wrote no archive into $work" >&2; exit 1; }',
    'key="$BACKUP_PREFIX/$(basename "$archive")"',
    "s3() {",
    "  curl --proto '=https' --tlsv1.2 -fsS --retry 3 --aws-sigv4 \"aws:amz:$BACKUP_REGION:s3\" \\",
    '    -K <(printf \'user = "%s:%s"\\n\' "$BACKUP_ACCESS_KEY_ID" "$BACKUP_SECRET_ACCESS_KEY") "$@"',
    "}",
    's3 -T "$archive" "$BACKUP_ENDPOINT/$BACKUP_BUCKET/$key"',
    'echo "$key" >>"$list"',
    'echo "uploaded $key to $BACKUP_ENDPOINT/$BACKUP_BUCKET"',
    'while [ "$(wc -l <"$list")" -gt "$BACKUP_RETENTION" ]; do',
    '  oldest=$(head -n 1 "$list")',
    '  s3 -X DELETE "$BACKUP_ENDPOINT/$BACKUP_BUCKET/$oldest"',
    '  sed -i 1d "$list"',
    '  echo "deleted $oldest, keeping the newest $BACKUP_RETENTION"',
    "done",
  ].join("\n");
}

/**
 * Installs the script, its settings (from stdin, 0600) and a systemd timer that runs it on
 * `schedule` (Persistent: a run missed while the host was down happens at boot), and enables the
 * timer. Prints when the next run is due. Safe to run again.
 */
export function backupInstallScript(schedule: string): string {
  const unit = (suffix: string, lines: string[]) =>
    [`cat >/etc/systemd/system/${BACKUP_UNIT}.${suffix} <<'UNIT'`, ...lines, "UNIT"].join("\n");
  return [
    "set -euo pipefail",
    `if ! systemd-analyze calendar ${shellQuote(schedule)} >/dev/null 2>&1; then`,
    `  echo ${shellQuote(`backup.schedule "${schedule}" is not a systemd calendar expression (see systemd.time(7)), such as daily or *-*-* 03:00:00`)} >&2`,
    "  exit 1",
    "fi",
    `install -d -m 0700 ${posix.dirname(BACKUP_ENV_PATH)} ${posix.dirname(BACKUP_LIST_PATH)}`,
    `(umask 077 && cat >${BACKUP_ENV_PATH}.new) && mv -f ${BACKUP_ENV_PATH}.new ${BACKUP_ENV_PATH}`,
    `cat >${BACKUP_SCRIPT_PATH} <<'SCRIPT'`,
    backupScript(),
    "SCRIPT",
    `chmod 0755 ${BACKUP_SCRIPT_PATH}`,
    unit("service", [
      "[Unit]",
      "Description=k0s-platform: back up k0s to S3-compatible storage",
      "After=k0scontroller.service",
      "[Service]",
      "Type=oneshot",
      `ExecStart=${BACKUP_SCRIPT_PATH}`,
    ]),
    unit("timer", [
      "[Unit]",
      "Description=k0s-platform: scheduled k0s backups",
      "[Timer]",
      `OnCalendar=${schedule}`,
      "Persistent=true",
      "RandomizedDelaySec=600",
      "[Install]",
      "WantedBy=timers.target",
    ]),
    "systemctl daemon-reload",
    `systemctl enable --now ${BACKUP_UNIT}.timer`,
    `systemctl list-timers ${BACKUP_UNIT}.timer --no-pager`,
  ].join("\n");
}

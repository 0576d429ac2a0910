/**
 * The API-server rung: the real program on the real engine (the pulumi CLI built from its served
 * module, the program served to it as an Automation API inline program, since the Node.js language
 * host cannot be built here) and the real Kubernetes provider, against a real API server (with
 * controller-manager) at v1.36.3 on 127.0.0.1.
 * Nothing is scheduled (there is no node), so this rung proves what lands in the API: the dev and
 * local-staging stack files as a user runs them, idempotence, state secrecy, config errors as the
 * CLI prints them, a quota edit and teardown. Steps run in order and share one cluster.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { ACME_EMAIL_VARIABLE, ALERT_RECEIVER_VARIABLE, ALERT_WEBHOOK_URL_VARIABLE } from "../../components/lib/flux";
import { CERT_MANAGER_CONTROLLER, HOSTS_ANNOTATION } from "../../components/lib/hostNames";
import { recipientOf } from "../../components/sopsAgeKey";
import { build, fluxApplied, nameOf } from "../../test/lib/manifests";
import { seedStackConfig } from "../../test/lib/seedStacks";
import type { KubeObject } from "../harness/kubeClient";
import { run, waitFor } from "../harness/processes";
import { pulumiCli, ROOT, type PulumiCli } from "../harness/pulumiCli";
import { CERT_MANAGER_CHARTS, TOOLCHAIN_BIN } from "../harness/toolchain";
import { clusterForTests, stackSettings, USER_REPOSITORY, type TestCluster } from "./cluster";

const STAGING_QUOTA = { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", pods: "20" };
const STACKS = ["dev", "local-staging"];

let cluster: TestCluster;
let cli: PulumiCli;
let workDir: string;

beforeAll(async () => {
  cluster = await clusterForTests();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "k0s-platform-apiserver-"));
  cli = pulumiCli(workDir);
  // The only changes to the stack files: this cluster, and Flux's manifest from the toolchain.
  for (const stack of STACKS) {
    cli.pulumi("stack", "init", stack);
    for (const [key, value] of Object.entries(stackSettings(cluster, { bootstrapsFlux: stack === "dev" })))
      cli.pulumi("config", "set", "--stack", stack, "--path", key, value);
  }
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  if (workDir !== undefined) fs.rmSync(workDir, { recursive: true, force: true });
});

const api = () => cluster.client;
const up = (stack: string) => cli.pulumi("up", "--stack", stack, "--yes", "--skip-preview");
const outputs = (stack: string) =>
  JSON.parse(cli.pulumi("stack", "output", "--json", "--show-secrets", "--stack", stack)) as Record<string, unknown>;
const stackFile = (stack: string) => path.join(cli.projectDir, `Pulumi.${stack}.yaml`);
const readStackConfig = (stack: string) => (parse(fs.readFileSync(stackFile(stack), "utf8")) as { config: Record<string, unknown> }).config;
const writeStackConfig = (stack: string, config: Record<string, unknown>) => fs.writeFileSync(stackFile(stack), stringify({ config }));

/** The age identity in flux-system/sops-age, decoded and as stored (base64). */
async function storedAgeKey(): Promise<{ identity: string; stored: string }> {
  const secret = await api().get("/api/v1/namespaces/flux-system/secrets/sops-age");
  const stored: string = secret.data["age.agekey"];
  return { identity: Buffer.from(stored, "base64").toString("utf8"), stored };
}

describe("pulumi up", () => {
  it("brings up dev, then local-staging on the same cluster", () => {
    for (const stack of STACKS) up(stack);
  }, 300_000);

  it("labels both namespaces, and a label selector finds them as kubectl get ns -l does", async () => {
    const namespaces = await api().list("/api/v1/namespaces?labelSelector=billing-group%3Denterprise");
    expect(namespaces.map((ns) => ns.metadata.name).sort()).toEqual(["dev", "staging"]);
    for (const ns of namespaces) {
      expect(ns.metadata.labels).toMatchObject({ environment: ns.metadata.name, client: "acme", "billing-group": "enterprise" });
    }
  });

  it("applies each stack's quota and container defaults", async () => {
    const staged = await api().get("/api/v1/namespaces/staging/resourcequotas/environment-quota");
    expect(staged.spec.hard).toEqual(STAGING_QUOTA);
    const devQuota = await api().get("/api/v1/namespaces/dev/resourcequotas/environment-quota");
    expect(devQuota.spec.hard).toEqual({
      "requests.cpu": "2",
      "requests.memory": "4Gi",
      "limits.cpu": "4",
      "limits.memory": "8Gi",
      pods: "30",
    });
    const limits = await api().get("/api/v1/namespaces/staging/limitranges/container-defaults");
    expect(limits.spec.limits).toEqual([
      { type: "Container", default: { cpu: "500m", memory: "512Mi" }, defaultRequest: { cpu: "100m", memory: "128Mi" } },
    ]);
  });

  it("isolates each namespace both ways with exactly its five policies", async () => {
    const dns = {
      to: [
        {
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
          podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
        },
      ],
      ports: [
        { protocol: "UDP", port: 53 },
        { protocol: "TCP", port: 53 },
      ],
    };
    for (const namespace of ["dev", "staging"]) {
      const policies = await api().list(`/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`);
      const specs = Object.fromEntries(policies.map((policy) => [policy.metadata.name, policy.spec]));
      expect(specs).toEqual({
        "default-deny-ingress": { podSelector: {}, policyTypes: ["Ingress"] },
        "allow-traefik-ingress": {
          podSelector: {},
          policyTypes: ["Ingress"],
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "traefik" } } }] }],
        },
        "allow-same-namespace": {
          podSelector: {},
          policyTypes: ["Ingress", "Egress"],
          ingress: [{ from: [{ podSelector: {} }] }],
          egress: [{ to: [{ podSelector: {} }] }],
        },
        "default-deny-egress": { podSelector: {}, policyTypes: ["Egress"] },
        "allow-dns-egress": { podSelector: {}, policyTypes: ["Egress"], egress: [dns] },
      });
    }
  });

  it("lets each environment's Flux account do everything in its namespace and nothing anywhere else", async () => {
    /** The API server's own authorization answer, as `kubectl auth can-i --as` asks it. */
    const can = async (user: string, verb: string, resource: { group?: string; resource: string; namespace?: string }) => {
      const review = await api().request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: {
          user,
          groups: ["system:serviceaccounts", "system:serviceaccounts:flux-system", "system:authenticated"],
          resourceAttributes: { verb, ...resource },
        },
      });
      return review.body.status.allowed as boolean;
    };
    for (const [environment, other] of [
      ["dev", "staging"],
      ["staging", "dev"],
    ]) {
      const account = `system:serviceaccount:flux-system:tenant-${environment}`;
      const answers = {
        "deployments here": await can(account, "create", { group: "apps", resource: "deployments", namespace: environment }),
        "secrets here": await can(account, "create", { resource: "secrets", namespace: environment }),
        "rolebindings here": await can(account, "create", {
          group: "rbac.authorization.k8s.io",
          resource: "rolebindings",
          namespace: environment,
        }),
        "deployments in the other environment": await can(account, "create", { group: "apps", resource: "deployments", namespace: other }),
        "secrets in flux-system (the age key)": await can(account, "get", { resource: "secrets", namespace: "flux-system" }),
        namespaces: await can(account, "create", { resource: "namespaces" }),
        clusterrolebindings: await can(account, "create", { group: "rbac.authorization.k8s.io", resource: "clusterrolebindings" }),
      };
      expect(answers, environment).toEqual({
        "deployments here": true,
        "secrets here": true,
        "rolebindings here": true,
        "deployments in the other environment": false,
        "secrets in flux-system (the age key)": false,
        namespaces: false,
        clusterrolebindings: false,
      });
    }
  });

  it("stores the age identity in flux-system/sops-age, matching the recipient both stacks export", async () => {
    const { identity } = await storedAgeKey();
    expect(identity).toMatch(/^AGE-SECRET-KEY-1/);
    const recipient = await recipientOf(identity);
    for (const stack of STACKS) expect(outputs(stack).ageRecipient, stack).toBe(recipient);
  });

  it("exports each age identity the stack holds from its state, once, to a 0600 file that imports as it is; on a terminal, with a warning", async () => {
    const ageKey = (...args: string[]) => [
      process.execPath,
      require.resolve("tsx/cli"),
      path.join(ROOT, "scripts", "age-key.ts"),
      "export",
      ...args,
    ];
    const exporting = (args: string[]) =>
      spawnSync(ageKey(...args)[0], ageKey(...args).slice(1), { cwd: cli.projectDir, env: cli.env, encoding: "utf8" });
    const safe = path.join(workDir, "safe-place");
    const first = exporting(["--stack", "dev", "--out-dir", safe]);
    expect(first.status, first.stderr).toBe(0);
    expect(fs.readdirSync(safe).sort()).toEqual(["dev-cluster.agekey", "dev-dev.agekey"]);
    for (const [file, secret] of [
      ["dev-cluster.agekey", "sops-age"],
      ["dev-dev.agekey", "sops-age-dev"],
    ]) {
      const stored = (await api().get(`/api/v1/namespaces/flux-system/secrets/${secret}`)).data["age.agekey"];
      const identity = Buffer.from(stored, "base64").toString("utf8").trim();
      const text = fs.readFileSync(path.join(safe, file), "utf8");
      expect(text.trim().split("\n").pop(), file).toBe(identity);
      expect(text).toContain(`# public key: ${await recipientOf(identity)}`);
      expect(fs.statSync(path.join(safe, file)).mode & 0o777).toBe(0o600);
    }
    // Once: a second export leaves the first copy alone.
    const before = fs.readFileSync(path.join(safe, "dev-dev.agekey"), "utf8");
    expect(exporting(["--stack", "dev", "--out-dir", safe]).status).not.toBe(0);
    expect(fs.readFileSync(path.join(safe, "dev-dev.agekey"), "utf8")).toBe(before);
    // local-staging shares dev's cluster: it holds staging's key alone.
    const staging = exporting(["--stack", "local-staging", "--out-dir", safe]);
    expect(staging.status, staging.stderr).toBe(0);
    expect(fs.existsSync(path.join(safe, "local-staging-staging.agekey"))).toBe(true);
    expect(fs.existsSync(path.join(safe, "local-staging-cluster.agekey"))).toBe(false);
    // To a terminal (script(1) gives the command one): the key, and the warning.
    const shell = ageKey("--stack", "dev", "--owner", "dev")
      .map((word) => `'${word}'`)
      .join(" ");
    const onTerminal = spawnSync("script", ["-qec", shell, "/dev/null"], { cwd: cli.projectDir, env: cli.env, encoding: "utf8" });
    expect(onTerminal.stdout).toContain("warning: printing private age keys to this terminal");
    expect(onTerminal.stdout).toContain(before.trim().split("\n").pop());
    // Imported as it is into a stack, stored as a secret.
    cli.pulumi("stack", "init", "restored");
    cli.pulumi("config", "set", "target", "local", "--stack", "restored");
    const imported = cli.run(["config", "set", "--secret", "--path", "ageIdentities.dev", "--stack", "restored"], {
      input: fs.readFileSync(path.join(safe, "dev-dev.agekey"), "utf8"),
    });
    expect(imported.status, imported.output).toBe(0);
    const config = JSON.parse(cli.pulumi("config", "--json", "--show-secrets", "--stack", "restored"))["k0s-platform:ageIdentities"];
    expect(config.secret).toBe(true);
    expect(JSON.parse(config.value).dev).toContain(before.trim().split("\n").pop());
    cli.pulumi("stack", "rm", "--yes", "--force", "restored");
  });

  it("installs Flux v2.7.3's controllers, whose CRDs accept the GitRepository and the Kustomization with SOPS decryption", async () => {
    const controllers = await api().list("/apis/apps/v1/namespaces/flux-system/deployments");
    expect(controllers.map((deployment) => deployment.spec.template.spec.containers[0].image).sort()).toEqual([
      "ghcr.io/fluxcd/helm-controller:v1.4.3",
      "ghcr.io/fluxcd/kustomize-controller:v1.7.2",
      "ghcr.io/fluxcd/source-controller:v1.7.3",
    ]);
    const source = await api().get("/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system");
    expect(source.spec).toMatchObject({ url: USER_REPOSITORY, ref: { branch: "main" }, interval: "1m" });
    const sync = await api().get("/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/flux-system");
    expect(sync.spec).toMatchObject({
      path: "./clusters/local",
      prune: true,
      sourceRef: { kind: "GitRepository", name: "flux-system" },
      decryption: { provider: "sops", secretRef: { name: "sops-age" } },
    });
  });
});

const GITOPS = path.join(ROOT, "gitops");
/** What the program writes to the remote cluster's cluster-settings ConfigMap and cluster-secrets Secret, for a stack with a webhook. */
const CLUSTER_SETTINGS = {
  [ACME_EMAIL_VARIABLE]: "platform@acme-consulting.eu",
  [ALERT_RECEIVER_VARIABLE]: "webhook",
  [ALERT_WEBHOOK_URL_VARIABLE]: "https://alerts.acme-consulting.eu/hooks/k0s-remote",
};

/** Every object Flux applies on a cluster, each with the Flux Kustomization that applies it. */
const fluxObjects = (cluster: string) =>
  build(path.join(GITOPS, "clusters", cluster)).flatMap((kustomization) =>
    [kustomization, ...fluxApplied(GITOPS, kustomization, CLUSTER_SETTINGS)].map((object) => ({
      via: `${cluster} ${nameOf(kustomization)}`,
      object: object as unknown as KubeObject,
    })),
  );

/** What helm-controller would install for the cert-manager HelmRelease: its pinned chart, its values. */
async function certManagerRelease(): Promise<KubeObject[]> {
  const release = fluxObjects("remote").find(({ object }) => object.kind === "HelmRelease" && object.metadata.name === "cert-manager")!
    .object as unknown as { metadata: { namespace: string }; spec: { chart: { spec: { version: string } }; values: unknown } };
  const values = path.join(workDir, "cert-manager-values.json");
  fs.writeFileSync(values, JSON.stringify(release.spec.values));
  const { gitVersion } = await api().get<{ gitVersion: string }>("/version");
  const rendered = run(path.join(TOOLCHAIN_BIN, "helm"), [
    "template",
    "cert-manager",
    path.join(CERT_MANAGER_CHARTS, `cert-manager-${release.spec.chart.spec.version}.tgz`),
    `--namespace=${release.metadata.namespace}`,
    `--kube-version=${gitVersion}`,
    `--values=${values}`,
  ]);
  return parseAllDocuments(rendered).flatMap((doc) => (doc.contents === null ? [] : [doc.toJS() as KubeObject]));
}

/**
 * Runs `use` with cert-manager's CRDs served (its chart installs them first) and its chart's other
 * objects at hand; the CRDs go again after, whatever happens, so nothing of them persists.
 */
async function withCertManagerCrds(use: (chart: KubeObject[]) => Promise<void>): Promise<void> {
  const chart = await certManagerRelease();
  const crds = chart.filter((object) => object.kind === "CustomResourceDefinition");
  expect(crds.map((crd) => crd.metadata.name)).toContain("clusterissuers.cert-manager.io");
  const collection = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  const created: string[] = [];
  try {
    for (const crd of crds) {
      expect((await api().request("POST", collection, crd)).status).toBe(201);
      created.push(`${collection}/${crd.metadata.name}`);
    }
    await waitFor("cert-manager's CRDs to be served", async () =>
      (await api().request("GET", "/apis/cert-manager.io/v1")).status === 200 ? true : undefined,
    );
    await use(chart.filter((object) => object.kind !== "CustomResourceDefinition"));
  } finally {
    for (const resource of created.reverse()) await api().request("DELETE", resource);
  }
}

/** The host names a stack file declares for an environment, as the namespace annotation holds them. */
const declaredHosts = (stack: string, environment: string): string =>
  ((seedStackConfig(stack).environments as Record<string, { hosts?: string[] }>)[environment].hosts ?? []).join(",");

async function annotateHosts(namespace: string, hosts: string): Promise<void> {
  const patch = { metadata: { annotations: { [HOSTS_ANNOTATION]: hosts } } };
  const response = await api().request("PATCH", `/api/v1/namespaces/${namespace}`, patch, "application/merge-patch+json");
  expect(response.status).toBe(200);
}

describe("the GitOps repository, on a real API server", () => {
  it("accepts the cert-manager chart at its pin with the HelmRelease's values, then every object Flux applies on either cluster (host policy included), and refuses a misspelt field", async () => {
    await withCertManagerCrds(async (chart) => {
      // The platform's namespaces, and production as the remote stack declares it (nothing persists).
      const namespaces = [
        ...["traefik", "monitoring", "cert-manager"].map((name) => ({ name })),
        {
          name: "production",
          labels: { environment: "production" },
          annotations: { [HOSTS_ANNOTATION]: declaredHosts("remote", "production") },
        },
      ];
      const refusals: string[] = [];
      const dryRun = async (objects: { via: string; object: KubeObject }[]) => {
        for (const { via, object } of objects) {
          const { status, body } = await api().dryRunApply(object);
          if (status !== 200 && status !== 201) refusals.push(`${via}: ${object.kind}/${object.metadata.name}: ${status} ${body?.message}`);
        }
      };
      try {
        for (const metadata of namespaces) {
          expect((await api().request("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata })).status).toBe(201);
        }
        const local = [...chart.map((object) => ({ via: "cert-manager chart", object })), ...fluxObjects("local")];
        await dryRun(local);
        // Remote staging is this cluster's staging namespace as the remote stack declares it: its hosts.
        await annotateHosts("staging", declaredHosts("remote", "staging"));
        try {
          await dryRun(fluxObjects("remote"));
        } finally {
          await annotateHosts("staging", declaredHosts("local-staging", "staging"));
        }
        expect(refusals).toEqual([]);
        console.log(
          `dry-run applied ${local.length + fluxObjects("remote").length} objects: the cert-manager chart's and every Flux Kustomization's on both clusters`,
        );

        const misspelt = {
          apiVersion: "cert-manager.io/v1",
          kind: "ClusterIssuer",
          metadata: { name: "misspelt" },
          spec: { selfSigned: {}, selfsigned: {} },
        };
        const refused = await api().dryRunApply(misspelt);
        // Server-side apply refuses an undeclared field while typing the patch, with a 500.
        expect(refused.status).toBeGreaterThanOrEqual(400);
        expect(refused.body.message).toContain(".spec.selfsigned: field not declared in schema");
      } finally {
        // Gone before the next test: a namespace still terminating changes under the later tests'
        // "the cluster is as it was" snapshots.
        for (const { name } of namespaces) await api().request("DELETE", `/api/v1/namespaces/${name}`);
        for (const { name } of namespaces) {
          await waitFor(`namespace ${name} to finish terminating`, async () =>
            (await api().request("GET", `/api/v1/namespaces/${name}`)).status === 404 ? true : undefined,
          );
        }
      }
    });
  }, 120_000);
});

describe("host names are bound to namespaces", () => {
  /** A dry-run create in staging, which the API server admits or refuses as it would the real one. */
  const createInStaging = async (
    object: { apiVersion: string; kind: string; metadata: { name: string }; spec: object },
    client = api(),
  ) => {
    const inStaging = { ...object, metadata: { ...object.metadata, namespace: "staging" } } as KubeObject;
    return client.request("POST", `${await client.collectionPath(inStaging)}?dryRun=All`, inStaging);
  };
  const ingress = (name: string, host: string | undefined, tlsHost = host) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name },
    spec: {
      ingressClassName: "traefik",
      rules: [
        {
          ...(host === undefined ? {} : { host }),
          http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "podinfo", port: { number: 9898 } } } }] },
        },
      ],
      ...(tlsHost === undefined ? {} : { tls: [{ hosts: [tlsHost], secretName: `${name}-tls` }] }),
    },
  });
  const refusal = (kind: string, name: string) =>
    `${kind} ${name} in namespace staging: its host names must match *.staging.localtest.me; the stack config sets them (environments.staging.hosts)`;

  it("refuses a staging route for dev's host name, by rule or by TLS host, naming what staging may serve; admits staging's own", async () => {
    for (const [name, host, tlsHost] of [
      ["claims-dev", "podinfo.dev.localtest.me", "podinfo.dev.localtest.me"],
      ["claims-dev-tls", "podinfo.staging.localtest.me", "podinfo.dev.localtest.me"],
      ["claims-deeper", "a.podinfo.staging.localtest.me", "a.podinfo.staging.localtest.me"],
    ]) {
      const refused = await createInStaging(ingress(name, host, tlsHost));
      expect(refused.status, name).toBe(403);
      expect(refused.body.message).toContain(refusal("Ingress", name));
    }
    expect((await createInStaging(ingress("own", "podinfo.staging.localtest.me"))).status).toBe(201);
  });

  it("refuses a catch-all: a rule without a host, or a default backend", async () => {
    const hostless = await createInStaging(ingress("catch-all", undefined));
    expect(hostless.status).toBe(403);
    expect(hostless.body.message).toContain(refusal("Ingress", "catch-all"));
    const withDefault = ingress("default-backend", "podinfo.staging.localtest.me");
    const backend = { service: { name: "podinfo", port: { number: 9898 } } };
    const refused = await createInStaging({ ...withDefault, spec: { ...withDefault.spec, defaultBackend: backend } });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain("a default backend would serve every host name");
  });

  it("refuses a staging Certificate for dev's name and a CertificateRequest from anyone but cert-manager", async () => {
    await withCertManagerCrds(async () => {
      const certificate = (name: string, dnsNames: string[]) => ({
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name },
        spec: { secretName: `${name}-tls`, dnsNames, issuerRef: { kind: "ClusterIssuer", name: "tls-staging" } },
      });
      const refused = await createInStaging(certificate("claims-dev", ["podinfo.staging.localtest.me", "podinfo.dev.localtest.me"]));
      expect(refused.status).toBe(403);
      expect(refused.body.message).toContain(refusal("Certificate", "claims-dev"));
      expect((await createInStaging(certificate("own", ["podinfo.staging.localtest.me"]))).status).toBe(201);

      const request = {
        apiVersion: "cert-manager.io/v1",
        kind: "CertificateRequest",
        metadata: { name: "by-hand" },
        spec: {
          request: Buffer.from("a CSR for any name").toString("base64"),
          issuerRef: { kind: "ClusterIssuer", name: "tls-production" },
        },
      };
      const byTenant = await createInStaging(request);
      expect(byTenant.status).toBe(403);
      expect(byTenant.body.message).toContain("only cert-manager creates certificate requests here");
      // cert-manager's controller, with the rights its chart grants it (here: all, as system:masters).
      const certManager = api().as(CERT_MANAGER_CONTROLLER, ["system:masters"]);
      expect((await createInStaging(request, certManager)).status).toBe(201);
    });
  }, 120_000);
});

describe("the ambient kubeconfig", () => {
  it("is never used: a Kubernetes resource without the explicit provider fails", async () => {
    // A program of its own under the project's Pulumi.yaml, whose config disables the default provider.
    const guard = cli.sideProject(
      "guard",
      'import * as k8s from "@pulumi/kubernetes";\nnew k8s.core.v1.Namespace("stray", { metadata: { name: "stray" } });\n',
    );
    cli.pulumi("stack", "init", "guard", "--cwd", guard);
    cli.pulumi("config", "set", "target", "local", "--stack", "guard", "--cwd", guard);
    const result = cli.run(["up", "--stack", "guard", "--yes", "--skip-preview", "--cwd", guard]);
    expect(result.status).not.toBe(0);
    expect(result.output).toMatch(/Default provider for 'kubernetes' disabled/);
    expect((await api().request("GET", "/api/v1/namespaces/stray")).status).toBe(404);
  }, 120_000);
});

describe("the quota is enforced", () => {
  // Compliant with Pod Security `restricted`, which every environment enforces.
  const pod = (
    name: string,
    cpu: string,
    securityContext: object = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
  ) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 100, seccompProfile: { type: "RuntimeDefault" } },
      containers: [{ name: "app", image: "registry.invalid/app:1", resources: { requests: { cpu }, limits: { cpu } }, securityContext }],
    },
  });

  it("refuses a privileged pod in staging with Pod Security's message, and admits the same pod unprivileged", async () => {
    const refused = await api().request(
      "POST",
      "/api/v1/namespaces/staging/pods?dryRun=All",
      pod("privileged", "100m", { privileged: true }),
    );
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/violates PodSecurity "restricted:latest": .*privileged/);
    expect((await api().request("POST", "/api/v1/namespaces/staging/pods?dryRun=All", pod("unprivileged", "100m"))).status).toBe(201);
  });

  it("refuses a pod above the staging quota and admits one inside it", async () => {
    const quotaPath = "/api/v1/namespaces/staging/resourcequotas/environment-quota";
    const { status: settled } = await waitFor("quota status", async () => {
      const quota = await api().get(quotaPath);
      return quota.status?.hard === undefined ? undefined : quota;
    });
    const refused = await api().request("POST", "/api/v1/namespaces/staging/pods", pod("too-big", "3"));
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/exceeded quota: environment-quota/);
    const admitted = await api().request("POST", "/api/v1/namespaces/staging/pods", pod("fits", "250m"));
    expect(admitted.status).toBe(201);
    await api().request("DELETE", "/api/v1/namespaces/staging/pods/fits?gracePeriodSeconds=0");
    // Admission charged the pod to the quota; the controller gives it back a moment later, and the
    // later tests' "the cluster is as it was" snapshots must not see that moment.
    await waitFor("the quota's usage to return", async () =>
      isDeepStrictEqual((await api().get(quotaPath)).status.used, settled.used) ? true : undefined,
    );
  });
});

describe("a second run", () => {
  it("previews no changes and refresh finds no drift", () => {
    for (const stack of STACKS) {
      cli.pulumi("preview", "--stack", stack, "--expect-no-changes");
      cli.pulumi("refresh", "--stack", stack, "--yes", "--expect-no-changes");
    }
  }, 300_000);
});

describe("the state", () => {
  it("holds neither the age identity nor any kubeconfig credential in plaintext", async () => {
    const { identity, stored } = await storedAgeKey();
    for (const stack of STACKS) {
      const exported = [cli.pulumi("stack", "export", "--stack", stack), ...rawStateFiles(stack)].join("\n");
      if (stack === "dev") expect(exported).toContain("ciphertext");
      for (const credential of [identity, stored, ...cluster.credentials]) {
        expect(exported.includes(credential), `${stack} state leaks a credential`).toBe(false);
      }
    }
  });
});

/** The backend's own files for a stack, as they sit on disk. */
function rawStateFiles(stack: string): string[] {
  const files = fs
    .readdirSync(cli.stateDir, { recursive: true, encoding: "utf8" })
    .filter((file) => path.basename(file).startsWith(`${stack}.json`));
  if (files.length === 0) throw new Error(`no state file for stack ${stack}`);
  return files.map((file) => fs.readFileSync(path.join(cli.stateDir, file), "utf8"));
}

/** uid and resourceVersion of everything the stacks manage, to prove a run changed nothing. */
async function clusterSnapshot(): Promise<string[]> {
  const paths = [
    "/api/v1/namespaces",
    ...["dev", "staging"].flatMap((ns) => [
      `/api/v1/namespaces/${ns}/resourcequotas`,
      `/api/v1/namespaces/${ns}/limitranges`,
      `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`,
    ]),
    "/api/v1/namespaces/flux-system/secrets",
    "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories",
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations",
  ];
  const lists = await Promise.all(paths.map((listPath) => api().list(listPath)));
  return lists
    .flat()
    .map((obj) => `${obj.metadata.namespace ?? ""}/${obj.metadata.name} ${obj.metadata.uid} ${obj.metadata.resourceVersion}`)
    .sort();
}

describe("a bad stack config", () => {
  const env = (quota: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    staging: { client: "acme", billingGroup: "enterprise", quota, ...extra },
  });
  it.each([
    ["unknown target", { "k0s-platform:target": "cloud" }, 'k0s-platform:target: "cloud" is not allowed'],
    [
      "namespace not DNS-1123",
      { "k0s-platform:environments": { Staging_1: { client: "acme", billingGroup: "enterprise" } } },
      '"Staging_1" is not a valid namespace name',
    ],
    [
      "label value",
      { "k0s-platform:environments": env(STAGING_QUOTA, { client: "acme corp" }) },
      '"acme corp" must be a Kubernetes label value',
    ],
    ["quota key", { "k0s-platform:environments": env({ "request.cpu": "1" }) }, '"request.cpu" is not a ResourceQuota resource'],
    [
      "quantity",
      { "k0s-platform:environments": env({ ...STAGING_QUOTA, "requests.memory": "1GB" }) },
      '"1GB" is not a Kubernetes quantity',
    ],
    ["request above limit", { "k0s-platform:environments": env({ ...STAGING_QUOTA, "requests.cpu": "3" }) }, '"3" is above limits.cpu "2"'],
    ["admin CIDR", { "k0s-platform:target": "remote", "k0s-platform:adminCidrs": ["10.0.0.1"] }, '"10.0.0.1" must be a CIDR block'],
    [
      "missing secret",
      { "k0s-platform:target": "remote", "k0s-platform:sshPublicKey": "ssh-ed25519 AAAAC3Nza e2e" },
      "k0s-platform:sshPrivateKey is missing",
    ],
  ])(
    "fails `up` on %s with the message alone, and leaves the cluster as it was",
    async (_class, change, message) => {
      const good = readStackConfig("local-staging");
      const before = await clusterSnapshot();
      writeStackConfig("local-staging", { ...good, ...change });
      try {
        const result = cli.run(["up", "--stack", "local-staging", "--yes", "--skip-preview"]);
        expect(result.status).not.toBe(0);
        expect(result.output).toContain(message);
        // What a user reads: the messages, not a program crash with a ts-node stack trace.
        expect(result.output).not.toMatch(/unhandled exception|\n\s+at .+\(.+:\d+:\d+\)/);
      } finally {
        writeStackConfig("local-staging", good);
      }
      expect(await clusterSnapshot()).toEqual(before);
    },
    120_000,
  );
});

describe("editing a quota in config", () => {
  it("updates only that quota", async () => {
    const before = await clusterSnapshot();
    // The README's command for tuning a quota.
    cli.pulumi("config", "set", "--stack", "local-staging", "--path", "environments.staging.quota.pods", "25");
    up("local-staging");
    const changes = cli.lastChanges("local-staging");
    expect(changes).toEqual(expect.objectContaining({ update: 1 }));
    expect(Object.keys(changes).sort()).toEqual(["same", "update"]);
    expect((await api().get("/api/v1/namespaces/staging/resourcequotas/environment-quota")).spec.hard.pods).toBe("25");
    const changed = (await clusterSnapshot()).filter((line) => !before.includes(line));
    expect(changed.map((line) => line.split(" ")[0])).toEqual(["staging/environment-quota"]);
  }, 120_000);
});

describe("pulumi destroy", () => {
  it("removes every object the stacks created and nothing else", async () => {
    const outsider = await api().request("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "made-by-hand" },
    });
    expect(outsider.status).toBe(201);
    for (const stack of [...STACKS].reverse()) cli.pulumi("destroy", "--stack", stack, "--yes", "--skip-preview");

    // Flux's controllers never ran here, so its namespace may still be finalizing.
    await waitFor("flux-system to finish terminating", async () =>
      (await api().request("GET", "/api/v1/namespaces/flux-system")).status === 404 ? true : undefined,
    );
    const namespaces = (await api().list("/api/v1/namespaces")).map((ns) => ns.metadata.name);
    expect(namespaces).toContain("made-by-hand");
    expect(namespaces).not.toContain("dev");
    expect(namespaces).not.toContain("staging");
    const crds = (await api().list("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")).map((crd) => crd.metadata.name);
    expect(crds.filter((name) => name.endsWith(".toolkit.fluxcd.io"))).toEqual([]);
  }, 300_000);
});

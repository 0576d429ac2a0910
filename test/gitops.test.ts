/**
 * The starter GitOps repository (gitops/) that users copy: every object passes its schema, every
 * kustomization renders, the Flux wiring matches what the Pulumi program bootstraps, and each
 * environment's workloads fit the quota the program puts on its namespace.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  ACME_EMAIL_VARIABLE,
  ALERT_RECEIVER_VARIABLE,
  ALERT_WEBHOOK_URL_VARIABLE,
  CLUSTER_SECRETS_NAME,
  CLUSTER_SETTINGS_NAME,
  environmentSopsSecret,
  FLUX_NAMESPACE,
  FLUX_SYNC_NAME,
  HELM_CONTROLLER,
  KUSTOMIZE_CONTROLLER,
  SOPS_SECRET_NAME,
  tenantServiceAccount,
} from "../components/lib/flux";
import { PLATFORM_REQUESTS } from "../components/lib/capacity";
import { environmentPriorityClass } from "../components/lib/environmentConfig";
import { hostMatches } from "../components/lib/hostNames";
import { MONITORING_DATA_DIR, waitForHostScript } from "../components/lib/k0s";
import { parseQuantity } from "../components/lib/validation";
import {
  build,
  containerResourceErrors,
  field,
  fluxApplied,
  idOf,
  isObj,
  KUSTOMIZE_CONFIG_API,
  kustomizationFile,
  nameOf,
  type Obj,
  plaintextSecretError,
  podTemplates,
  quotaOverruns,
  quotaUsage,
  readDocuments,
  validateObject,
  yamlFiles,
} from "./lib/manifests";
import { SEED_STACKS_DIR, seedStackConfig } from "./lib/seedStacks";

const ROOT = path.resolve(__dirname, "..");
const GITOPS = path.join(ROOT, "gitops");
const rel = (file: string): string => path.relative(GITOPS, file);

const SOURCE = { kind: "GitRepository", name: FLUX_SYNC_NAME };
/** What a Kustomization decrypts with: its environment's key, or the cluster's for the platform's folders. */
const decryptionOf = (kustomization: string) => {
  const environment = /^(?:apps|secrets)-(.+)$/.exec(kustomization)?.[1];
  return { provider: "sops", secretRef: { name: environment === undefined ? SOPS_SECRET_NAME : environmentSopsSecret(environment) } };
};

const CLUSTERS = {
  local: ["dev", "staging"],
  remote: ["staging", "production"],
  ssh: ["staging", "production"],
} as const;
/** The infrastructure overlay each cluster runs: a server of the ssh target runs the droplet's. */
const INFRASTRUCTURE: Record<keyof typeof CLUSTERS, string> = { local: "local", remote: "remote", ssh: "remote" };

/**
 * Each environment's ResourceQuota as the shipped stacks seed it, so the apps' budget is checked against
 * what the program really enforces (staging appears twice: local-staging and remote).
 */
const STACK_QUOTAS = fs
  .readdirSync(SEED_STACKS_DIR)
  .filter((file) => /^Pulumi\..+\.yaml$/.test(file))
  .flatMap((file) => {
    const config = (readDocuments(path.join(SEED_STACKS_DIR, file))[0] as Obj).config as Obj;
    const environments = (config["k0s-platform:environments"] ?? {}) as Record<string, Obj>;
    return Object.entries(environments).map(([env, settings]) => [env, file, (settings.quota ?? {}) as Obj] as const);
  });

/** The hosts each overlay serves, as `kubectl apply -k` applies it. */
const HOSTS: Record<string, string[]> = {
  dev: ["podinfo.dev.localtest.me"],
  staging: ["podinfo.staging.example.com"],
  production: ["podinfo.example.com"],
};
/** The hosts each cluster serves per environment, after its Flux Kustomization's own patches. */
const CLUSTER_HOSTS: Record<keyof typeof CLUSTERS, Record<string, string>> = {
  local: { dev: "podinfo.dev.localtest.me", staging: "podinfo.staging.localtest.me" },
  remote: { staging: "podinfo.staging.example.com", production: "podinfo.example.com" },
  ssh: { staging: "podinfo.staging.example.com", production: "podinfo.example.com" },
};

const files = yamlFiles(GITOPS);
const kustomizeDirs = files.filter((file) => kustomizationFile(path.dirname(file)) === file).map((file) => path.dirname(file));
const clusterObjects = (cluster: string): Obj[] => build(path.join(GITOPS, "clusters", cluster));
const fluxKustomizations = (cluster: string): Obj[] =>
  clusterObjects(cluster).filter((obj) => obj.apiVersion === "kustomize.toolkit.fluxcd.io/v1");
const fluxPath = (ks: Obj): string => path.join(GITOPS, String((ks.spec as Obj).path));
/** Each environment's secrets folder ships empty: only the user's encrypted files can fill it. */
const isSecretsFolder = (dir: string): boolean => path.basename(dir) === "secrets";

/** Files that kustomizations use as patches: partial objects, checked through what they render. */
const patchFiles = new Set(
  kustomizeDirs.flatMap((dir) => {
    const [config] = readDocuments(kustomizationFile(dir) as string) as Obj[];
    return ((config.patches ?? []) as { path?: string }[]).flatMap((p) => (p.path ? [path.resolve(dir, p.path)] : []));
  }),
);
const objectDocuments = files
  .filter((file) => !patchFiles.has(file))
  .flatMap((file) => readDocuments(file).map((doc) => ({ file: rel(file), doc })));

describe("gitops manifests", () => {
  const label = (doc: unknown): string =>
    !isObj(doc) ? "(not a mapping)" : doc.apiVersion === KUSTOMIZE_CONFIG_API ? "kustomize config" : idOf(doc);
  it.each(objectDocuments.map(({ file, doc }) => [file, label(doc), doc] as const))("%s %s is valid", (file, _label, doc) => {
    expect(isObj(doc)).toBe(true);
    // kustomization.yaml files are checked by rendering them, below.
    if ((doc as Obj).apiVersion === KUSTOMIZE_CONFIG_API) expect(path.basename(file)).toBe("kustomization.yaml");
    else validateObject(doc as Obj);
  });

  const fluxTable = Object.keys(CLUSTERS).flatMap((c) => fluxKustomizations(c).map((ks) => [c, nameOf(ks), ks] as const));
  it.each(fluxTable)("%s %s renders objects that pass their schemas after patches", (_cluster, _name, ks) => {
    const rendered = fluxApplied(GITOPS, ks);
    expect(rendered.length > 0 || isSecretsFolder(fluxPath(ks))).toBe(true);
    rendered.forEach(validateObject);
  });

  it("every YAML file is reachable from a cluster folder, so none is silently ignored", () => {
    const visited = new Set<string>();
    for (const cluster of Object.keys(CLUSTERS)) {
      for (const ks of build(path.join(GITOPS, "clusters", cluster), visited)) {
        if (ks.apiVersion === "kustomize.toolkit.fluxcd.io/v1") build(fluxPath(ks), visited);
      }
    }
    expect(files.filter((file) => !visited.has(file)).map(rel)).toEqual([]);
  });

  it("creates none of the environment namespaces the program owns", () => {
    const owned = new Set([...Object.values(CLUSTERS).flat(), ...STACK_QUOTAS.map(([env]) => env)]);
    const namespaces = objectDocuments.flatMap(({ doc }) => ((doc as Obj).kind === "Namespace" ? [nameOf(doc as Obj)] : []));
    expect(namespaces).toContain("traefik");
    expect(namespaces.filter((name) => owned.has(name))).toEqual([]);
  });

  it("holds no plaintext Secret", () => {
    expect(objectDocuments.flatMap(({ doc }) => plaintextSecretError(doc as Obj) ?? [])).toEqual([]);
  });

  it("grants no role a way into other pods or every resource (nodes/proxy, exec, attach, wildcards)", () => {
    const dangerous = /^(\*|nodes\/proxy|pods\/(exec|attach|portforward)|secrets)$/;
    const grants = objectDocuments
      .map(({ file, doc }) => ({ file, role: doc as Obj }))
      .filter(({ role }) => role.kind === "ClusterRole" || role.kind === "Role")
      .flatMap(({ file, role }) =>
        ((role.rules as { resources?: string[]; verbs?: string[] }[] | undefined) ?? []).flatMap((rule) =>
          [...(rule.resources ?? []), ...(rule.verbs ?? [])].filter((entry) => dangerous.test(entry)).map((entry) => `${file}: ${entry}`),
        ),
      );
    expect(grants).toEqual([]);
  });
});

describe.each(kustomizeDirs.map((dir) => [rel(dir), dir]))("kustomization %s", (_name, dir) => {
  it("renders: resources and patch files exist and every patch target matches a resource", () => {
    expect(build(dir).length > 0 || isSecretsFolder(dir)).toBe(true);
  });
});

describe.each(Object.entries(CLUSTERS))("clusters/%s", (cluster, environments) => {
  const kustomizations = fluxKustomizations(cluster);
  const byName = new Map(kustomizations.map((ks) => [nameOf(ks), ks.spec as Obj]));
  const dependsOn = (name: string): string[] => ((byName.get(name)?.dependsOn ?? []) as { name: string }[]).map((dep) => dep.name);
  const closure = (name: string, seen: string[] = []): string[] =>
    dependsOn(name).flatMap((dep) => (seen.includes(dep) ? [dep] : [dep, ...closure(dep, [...seen, dep])]));

  it("has exactly the infrastructure and its environments' apps", () => {
    expect(clusterObjects(cluster).map(idOf)).toEqual(kustomizations.map(idOf));
    expect([...byName.keys()].sort()).toEqual(
      ["infra-configs", "infra-controllers", ...environments.flatMap((env) => [`apps-${env}`, `secrets-${env}`])].sort(),
    );
  });

  it.each(kustomizations.map((ks) => [nameOf(ks), ks] as const))(
    "%s is wired to the program's source and its own SOPS key",
    (_name, ks) => {
      const spec = ks.spec as Obj;
      expect((ks.metadata as Obj).namespace).toBe(FLUX_NAMESPACE);
      expect(spec.sourceRef).toEqual(SOURCE);
      expect(spec.decryption).toEqual(decryptionOf(nameOf(ks)));
      expect(spec.prune).toBe(true);
      expect(spec.wait).toBe(true);
      expect(kustomizationFile(fluxPath(ks))).toBeDefined();
    },
  );

  it("infrastructure paths are this cluster's overlays, controllers before configs", () => {
    const overlay = INFRASTRUCTURE[cluster as keyof typeof CLUSTERS];
    expect(byName.get("infra-controllers")?.path).toBe(`./infrastructure/overlays/${overlay}/controllers`);
    expect(byName.get("infra-configs")?.path).toBe(`./infrastructure/overlays/${overlay}/configs`);
    expect(dependsOn("infra-controllers")).toEqual([]);
    expect(dependsOn("infra-configs")).toEqual(["infra-controllers"]);
  });

  it("dependsOn names exist here and form no cycle", () => {
    for (const name of byName.keys()) {
      expect(dependsOn(name).filter((dep) => !byName.has(dep))).toEqual([]);
      expect(closure(name)).not.toContain(name);
    }
  });

  // No targetNamespace: it would quietly move an object a tenant names in another namespace into its
  // own; without it, the tenant's account is refused there and the whole commit fails, visibly.
  it.each(environments.map((env) => [env]))("apps-%s applies as its tenant's account, after all infrastructure", (env) => {
    const spec = byName.get(`apps-${env}`);
    expect(spec?.path).toBe(`./apps/overlays/${env}`);
    expect(spec?.serviceAccountName).toBe(tenantServiceAccount(env));
    expect(spec?.targetNamespace).toBeUndefined();
    expect(closure(`apps-${env}`)).toEqual(expect.arrayContaining(["infra-controllers", "infra-configs"]));
  });

  it.each(environments.map((env) => [env]))("secrets-%s applies as its tenant's account and waits for nothing", (env) => {
    const spec = byName.get(`secrets-${env}`);
    expect(spec?.path).toBe(`./apps/overlays/${env}/secrets`);
    expect(spec?.serviceAccountName).toBe(tenantServiceAccount(env));
    expect(spec?.targetNamespace).toBeUndefined();
    expect(dependsOn(`secrets-${env}`)).toEqual([]);
  });

  it("applies the platform's folders, and only those, as Flux's own account", () => {
    const platform = [...byName].filter(([, spec]) => spec.serviceAccountName === KUSTOMIZE_CONTROLLER).map(([name]) => name);
    expect(platform.sort()).toEqual(["infra-configs", "infra-controllers"]);
  });
});

describe("traefik overlays", () => {
  const values = (cluster: string): Obj => {
    const objects = build(path.join(GITOPS, "infrastructure/overlays", cluster, "controllers"));
    return (objects.find((obj) => obj.kind === "HelmRelease")?.spec as Obj).values as Obj;
  };

  it("local: NodePorts 30080/30443, which k0s keeps on 127.0.0.1", () => {
    expect(values("local")).toMatchObject({
      service: { spec: { type: "NodePort" } },
      ports: { web: { nodePort: 30080 }, websecure: { nodePort: 30443 } },
      ingressClass: { name: "traefik" },
    });
  });

  it("remote: host ports 80/443, the only ones the cloud firewall opens, without a surge pod", () => {
    expect(values("remote")).toMatchObject({
      service: { spec: { type: "ClusterIP" } },
      ports: { web: { hostPort: 80 }, websecure: { hostPort: 443 } },
      updateStrategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
      ingressClass: { name: "traefik" },
    });
  });

  it("remote: plain HTTP only redirects, permanently, to HTTPS; the workstation keeps plain HTTP on 30080", () => {
    const redirect = (cluster: string) => field(values(cluster), "ports", "web", "http", "redirections", "entryPoint");
    expect(redirect("remote")).toEqual({ to: "websecure", scheme: "https", permanent: true });
    expect(redirect("local")).toBeUndefined();
  });
});

describe.each(Object.entries(CLUSTERS))("Flux's objects on %s under the multi-tenancy lockdown", (cluster, environments) => {
  // The cluster folder's own Kustomizations, and everything each of them applies.
  const everything = (): Obj[] => [...fluxKustomizations(cluster), ...fluxKustomizations(cluster).flatMap((ks) => fluxApplied(GITOPS, ks))];
  const fluxObjects = () => everything().filter((obj) => String(obj.apiVersion).includes(".toolkit.fluxcd.io/"));

  it("installs each chart as helm-controller's own account from Flux's namespace, into the chart's namespace under its own name", () => {
    const releases = everything().filter((obj) => obj.kind === "HelmRelease");
    expect(releases.map(nameOf).sort()).toEqual(["cert-manager", "traefik"]);
    for (const release of releases) {
      const name = nameOf(release);
      expect((release.metadata as Obj).namespace, name).toBe(FLUX_NAMESPACE);
      expect(release.spec, name).toMatchObject({
        serviceAccountName: HELM_CONTROLLER,
        targetNamespace: name,
        storageNamespace: name,
        releaseName: name,
      });
    }
  });

  it("references only objects in its own namespace (the controllers refuse any other)", () => {
    const all = everything();
    // What the program creates beside Flux: the GitRepository and the age keys' Secrets.
    const declared = new Set([
      ...all.map((obj) => `${String(obj.kind)}/${String((obj.metadata as Obj).namespace)}/${nameOf(obj)}`),
      `GitRepository/${FLUX_NAMESPACE}/${FLUX_SYNC_NAME}`,
      `Secret/${FLUX_NAMESPACE}/${SOPS_SECRET_NAME}`,
      ...environments.map((environment) => `Secret/${FLUX_NAMESPACE}/${environmentSopsSecret(environment)}`),
    ]);
    const unresolved = fluxObjects().flatMap((obj) => {
      const namespace = String((obj.metadata as Obj).namespace);
      const spec = obj.spec as Obj;
      const refs = [
        spec.sourceRef as Obj,
        ((spec.chart as Obj | undefined)?.spec as Obj | undefined)?.sourceRef as Obj,
        ...((spec.dependsOn as Obj[] | undefined) ?? []).map((dep) => ({ kind: obj.kind, ...dep })),
        { kind: "Secret", ...((spec.decryption as Obj | undefined)?.secretRef as Obj) },
      ].filter((ref): ref is Obj => (ref as Obj | undefined)?.name !== undefined);
      return refs
        .filter(
          (ref) => (ref.namespace ?? namespace) !== namespace || !declared.has(`${String(ref.kind)}/${namespace}/${String(ref.name)}`),
        )
        .map((ref) => `${idOf(obj)} -> ${JSON.stringify(ref)}`);
    });
    expect(unresolved).toEqual([]);
  });

  it("names the account of every Flux object that applies anything, so none falls back to `default`", () => {
    const appliers = fluxObjects().filter((obj) => obj.kind === "Kustomization" || obj.kind === "HelmRelease");
    expect(appliers.filter((obj) => (obj.spec as Obj).serviceAccountName === undefined).map(idOf)).toEqual([]);
  });
});

describe("TLS (cert-manager)", () => {
  const kustomization = (cluster: string, name: string): Obj =>
    fluxKustomizations(cluster).find((ks) => nameOf(ks) === name) ?? expect.fail(`${cluster} has no Kustomization ${name}`);
  const applied = (cluster: string, name: string): Obj[] => fluxApplied(GITOPS, kustomization(cluster, name));
  const clusterIssuer = (cluster: string, name: string): Obj =>
    applied(cluster, "infra-configs").find((obj) => obj.kind === "ClusterIssuer" && nameOf(obj) === name) ??
    expect.fail(`${cluster}'s infra-configs declares no ClusterIssuer ${name}`);

  it.each(Object.keys(CLUSTERS))("%s: cert-manager comes from a pinned chart that installs and keeps its CRDs", (cluster) => {
    const release = applied(cluster, "infra-controllers").find((obj) => obj.kind === "HelmRelease" && nameOf(obj) === "cert-manager");
    expect(field(release, "spec", "chart", "spec", "version")).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(field(release, "spec", "values", "crds")).toEqual({ enabled: true, keep: true });
  });

  const servedTable = Object.entries(CLUSTERS).flatMap(([cluster, envs]) => envs.map((env) => [cluster, env] as const));
  it.each(servedTable)("%s %s: the Ingress asks tls-<env> for a certificate covering exactly the host it serves", (cluster, env) => {
    const ingress = applied(cluster, `apps-${env}`).find((obj) => obj.kind === "Ingress")!;
    const hosts = ((ingress.spec as Obj).rules as Obj[]).map((rule) => rule.host);
    expect(hosts).toEqual([CLUSTER_HOSTS[cluster as keyof typeof CLUSTERS][env]]);
    expect(((ingress.spec as Obj).tls as Obj[]).map((tls) => tls.hosts)).toEqual([hosts]);
    const issuer = field(ingress, "metadata", "annotations", "cert-manager.io/cluster-issuer");
    expect(issuer).toBe(`tls-${env}`);
    expect(clusterIssuer(cluster, String(issuer))).toBeDefined();
  });

  /** The stacks whose environments live on each cluster, with their seed config. */
  // An ssh stack takes the remote stack's environments, as the README has a user copy them.
  const STACKS: Record<string, string[]> = { local: ["dev", "local-staging"], remote: ["remote"], ssh: ["remote"] };
  const declaredHosts = (cluster: string, env: string): string[] => {
    const environments = STACKS[cluster].map((stack) => seedStackConfig(stack).environments as Record<string, Obj>);
    return (environments.find((declared) => env in declared)?.[env].hosts ?? []) as string[];
  };

  it.each(servedTable)("%s %s: the stack declares the host it serves, and no other environment there may claim it", (cluster, env) => {
    const ingress = applied(cluster, `apps-${env}`).find((obj) => obj.kind === "Ingress")!;
    const hosts = [
      ...((ingress.spec as Obj).rules as Obj[]).map((rule) => String(rule.host)),
      ...((ingress.spec as Obj).tls as Obj[]).flatMap((tls) => tls.hosts as string[]),
    ];
    const covered = (environment: string) => hosts.filter((host) => declaredHosts(cluster, environment).some((p) => hostMatches(p, host)));
    expect(covered(env)).toEqual(hosts);
    for (const other of CLUSTERS[cluster as keyof typeof CLUSTERS].filter((name) => name !== env)) expect(covered(other)).toEqual([]);
  });

  it("local: every issuer signs with the workstation's CA, a self-signed root cert-manager keeps in its namespace", () => {
    const configs = applied("local", "infra-configs");
    const ca = configs.find((obj) => obj.kind === "Certificate" && nameOf(obj) === "local-ca")!;
    expect(ca.metadata).toMatchObject({ namespace: "cert-manager" });
    expect(ca.spec).toMatchObject({ isCA: true, secretName: "local-ca" });
    const root = clusterIssuer("local", String(field(ca, "spec", "issuerRef", "name")));
    expect(root.spec).toEqual({ selfSigned: {} });
    for (const env of CLUSTERS.local) expect(clusterIssuer("local", `tls-${env}`).spec).toEqual({ ca: { secretName: "local-ca" } });
  });

  it.each([
    ["staging", "https://acme-staging-v02.api.letsencrypt.org/directory"],
    ["production", "https://acme-v02.api.letsencrypt.org/directory"],
  ])("remote: tls-%s registers at %s with the stack's e-mail and answers HTTP-01 through Traefik", (env, server) => {
    expect(field(clusterIssuer("remote", `tls-${env}`), "spec", "acme")).toMatchObject({
      server,
      email: `\${${ACME_EMAIL_VARIABLE}}`,
      solvers: [{ http01: { ingress: { ingressClassName: "traefik" } } }],
    });
  });

  it("remote: infra-configs substitutes the e-mail from the ConfigMap the Pulumi program writes", () => {
    expect(field(kustomization("remote", "infra-configs"), "spec", "postBuild")).toEqual({
      substituteFrom: [{ kind: "ConfigMap", name: CLUSTER_SETTINGS_NAME }],
    });
    expect(field(kustomization("local", "infra-configs"), "spec", "postBuild")).toBeUndefined();
  });
});

it("every environment on a cluster has a quota in some stack file", () => {
  const budgeted = STACK_QUOTAS.filter(([, , hard]) => Object.keys(hard).length > 0).map(([env]) => env);
  expect([...new Set(budgeted)].sort()).toEqual([...new Set(Object.values(CLUSTERS).flat())].sort());
});

describe.each(Object.keys(HOSTS))("apps/overlays/%s", (env) => {
  // Rendered inside each test, so a broken overlay fails its tests rather than the whole file.
  const rendered = (): Obj[] => build(path.join(GITOPS, "apps/overlays", env));
  const find = (kind: string): Obj | undefined => rendered().find((obj) => obj.kind === kind);

  it(`puts everything in ${env}, for kubectl and Flux alike, and creates no Namespace`, () => {
    // What `kubectl apply -k apps/overlays/${env}` applies, with no Flux involved.
    expect(
      rendered()
        .filter((obj) => (obj.metadata as Obj).namespace !== env)
        .map(idOf),
    ).toEqual([]);
    expect(rendered().filter((obj) => obj.kind === "Namespace")).toEqual([]);
    const flux = Object.keys(CLUSTERS)
      .flatMap((cluster) => fluxKustomizations(cluster))
      .filter((ks) => nameOf(ks) === `apps-${env}`);
    expect(flux.length).toBeGreaterThan(0);
    // Flux adds no namespace of its own: the overlay's is the one its tenant's account may write to.
    for (const ks of flux) expect((ks.spec as Obj).serviceAccountName).toBe(tenantServiceAccount(env));
  });

  it("sets cpu and memory requests and limits on every container", () => {
    expect(containerResourceErrors(rendered())).toEqual([]);
  });

  it("holds no SOPS file, which `kubectl apply -k` could not decrypt; its secrets/ folder puts them in " + env, () => {
    expect(
      rendered()
        .filter((obj) => "sops" in obj)
        .map(idOf),
    ).toEqual([]);
    const secrets = build(path.join(GITOPS, "apps/overlays", env, "secrets"));
    expect(secrets.filter((obj) => (obj.metadata as Obj).namespace !== env).map(idOf)).toEqual([]);
  });

  it.each(STACK_QUOTAS.filter(([quotaEnv]) => quotaEnv === env))(
    "fits the %s quota of %s at its peak, surge included",
    (_env, _file, hard) => {
      expect(quotaOverruns(quotaUsage(rendered()), hard)).toEqual([]);
    },
  );

  it("runs the replicas and serves the hosts this environment promises", () => {
    const replicas = (find("Deployment")?.spec as Obj).replicas as number;
    if (env === "production") expect(replicas).toBeGreaterThanOrEqual(2);
    else expect(replicas).toBe(1);
    const rules = ((find("Ingress")?.spec as Obj).rules ?? []) as Obj[];
    expect(rules.map((rule) => rule.host)).toEqual(HOSTS[env]);
    expect((find("Ingress")?.spec as Obj).ingressClassName).toBe("traefik");
  });
});

describe("test helpers catch what they exist to catch", () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "gitops-test-"));
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));
  const tree = (kustomization: string, extra: Record<string, string> = {}): string => {
    const dir = fs.mkdtempSync(path.join(scratch, "kustomization-"));
    const files = { "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", ...extra };
    fs.writeFileSync(path.join(dir, "kustomization.yaml"), `apiVersion: ${KUSTOMIZE_CONFIG_API}\nkind: Kustomization\n`);
    fs.appendFileSync(path.join(dir, "kustomization.yaml"), kustomization);
    for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
    return dir;
  };
  const doc = (apiVersion: string, kind: string, rest: Obj = {}): Obj => ({
    apiVersion,
    kind,
    metadata: { name: "x" },
    ...rest,
  });
  const unmatched = "resources: [a.yaml]\npatches: [{path: p.yaml, target: {kind: ConfigMap, name: b}}]";

  it.each([
    ["a missing resource", tree("resources: [gone.yaml]"), /resource gone.yaml does not exist/],
    ["a missing patch", tree("resources: [a.yaml]\npatches: [{path: gone.yaml}]"), /patch gone.yaml does not exist/],
    ["a patch matching nothing", tree(unmatched, { "p.yaml": "[]" }), /targets ConfigMap\/b, which no resource/],
    ["a field it would skip", tree("resources: [a.yaml]\nnamePrefix: dev-"), /unsupported field\(s\) namePrefix/],
    [
      "an image no container runs",
      tree("resources: [a.yaml]\nimages: [{name: registry.invalid/app, newTag: '2'}]"),
      /images entry registry.invalid\/app matches no container/,
    ],
  ])("build rejects %s", (_case, dir, message) => {
    expect(() => build(dir)).toThrow(message);
  });

  it.each([
    ["an unknown kind", doc("traefik.io/v1alpha1", "Middleware"), /no schema validator/],
    ["a deprecated Flux beta API", doc("helm.toolkit.fluxcd.io/v2beta2", "HelmRelease"), /no schema validator/],
    ["a schema violation", doc("apps/v1", "Deployment", { spec: { replicas: "2" } }), /replicas must be integer/],
  ])("validateObject rejects %s", (_case, obj, message) => {
    expect(() => validateObject(obj)).toThrow(message);
  });

  it.each([
    ["no sops block", doc("v1", "Secret", { stringData: { a: "b" } }), /no sops block/],
    ["a clear value", doc("v1", "Secret", { data: { a: "YQ==" }, sops: { mac: "ENC[x]" } }), /1 unencrypted/],
  ])("plaintextSecretError flags %s", (_case, obj, message) => {
    expect(plaintextSecretError(obj)).toMatch(message);
  });

  it("quotaOverruns reports each exceeded key with both numbers; absent keys are unlimited", () => {
    const resources = { requests: { cpu: "500m", memory: "512Mi" }, limits: { cpu: "1", memory: "1Gi" } };
    const template = { spec: { containers: [{ name: "c", resources }] } };
    const deployment = (replicas: number): Obj =>
      doc("apps/v1", "Deployment", { spec: { replicas, strategy: { type: "Recreate" }, template } });
    // A bare `memory` key is the request total, as in the ResourceQuota API; limits.memory is unset.
    const hard = { "requests.cpu": "1", memory: "1Gi", "limits.cpu": "2", pods: "3" };
    expect(quotaOverruns(quotaUsage([deployment(2)]), hard)).toEqual([]);
    expect(quotaOverruns(quotaUsage([deployment(4)]), hard)).toEqual([
      "requests.cpu: uses 2000, quota allows 1000",
      `requests.memory: uses ${2 * 2 ** 30}, quota allows ${2 ** 30}`,
      "limits.cpu: uses 4000, quota allows 2000",
      "pods: uses 4, quota allows 3",
    ]);
  });
});

describe("priority (apps/overlays)", () => {
  it.each(["dev", "staging", "production"])(
    "%s: every workload names its environment's PriorityClass, which the program declares",
    (env) => {
      const templates = podTemplates(build(path.join(GITOPS, "apps/overlays", env)));
      expect(templates.length).toBeGreaterThan(0);
      for (const { owner, spec } of templates) expect(spec.priorityClassName, owner).toBe(environmentPriorityClass(env));
    },
  );
});

describe("monitoring (infrastructure/base/monitoring)", () => {
  const MI = 2 ** 20;
  const monitoring = (): Obj[] => build(path.join(GITOPS, "infrastructure/base/monitoring"));
  /** The budget docs/monitoring.md states for the monitoring: millicores and bytes, at its peak. */
  const BUDGET = { "requests.cpu": 180, "requests.memory": 400 * MI, "limits.cpu": 850, "limits.memory": 960 * MI };

  it("keeps every sample for at least 14 days, so a whole soak stays visible", () => {
    const args = (podTemplates(monitoring()).find(({ owner }) => owner === "Deployment/victoria-metrics")!.spec.containers as Obj[])[0]
      .args as string[];
    const retention = args.find((arg) => arg.startsWith("-retentionPeriod="))!.split("=")[1];
    expect(Number(/^(\d+)d$/.exec(retention)![1])).toBeGreaterThanOrEqual(14);
  });

  it("runs as nobody with no host path of its own: its data is the local volume the host's install steps create", () => {
    const objects = monitoring();
    for (const { owner, spec } of podTemplates(objects)) {
      expect(field(spec, "securityContext", "runAsNonRoot"), owner).toBe(true);
      expect(field(spec, "securityContext", "runAsUser"), owner).not.toBe(0);
      expect((spec.volumes as Obj[] | undefined)?.filter((volume) => "hostPath" in volume) ?? [], owner).toEqual([]);
    }
    const namespace = objects.find((obj) => obj.kind === "Namespace")!;
    expect(field(namespace, "metadata", "labels", "pod-security.kubernetes.io/enforce")).toBe("restricted");
    const volume = objects.find((obj) => obj.kind === "PersistentVolume")!;
    expect(field(volume, "spec", "local", "path")).toBe(MONITORING_DATA_DIR);
    expect(waitForHostScript("root")).toContain(MONITORING_DATA_DIR);
    // Reserved for monitoring's claim, and kept when the claim goes: a soak's data outlives a mistake.
    expect(field(volume, "spec", "claimRef")).toEqual({ namespace: "monitoring", name: "victoria-metrics" });
    expect(field(volume, "spec", "persistentVolumeReclaimPolicy")).toBe("Retain");
  });

  it("stays within its stated budget, and states every request and limit", () => {
    expect(containerResourceErrors(monitoring())).toEqual([]);
    const usage = quotaUsage(monitoring());
    for (const [key, most] of Object.entries(BUDGET)) expect(usage[key as keyof typeof BUDGET], key).toBeLessThanOrEqual(most);
  });

  it("with Traefik, cert-manager, Flux and k0s's own pods, requests no more than the program's capacity check counts for the platform", () => {
    // Pods the platform runs besides these: k0s's CoreDNS (100m, 70Mi), kube-router (250m, 16Mi) and
    // metrics-server (at most 50m, 64Mi), and Flux's three controllers (250m, 192Mi in all).
    const k0sAndFlux = { cpu: 650, memory: (70 + 16 + 64 + 192) * MI };
    const infrastructure = build(path.join(GITOPS, "infrastructure/overlays/remote/controllers"));
    // Charts' pods, from the requests their values set: Traefik, and cert-manager's controller,
    // webhook, cainjector and its one-off startupapicheck Job.
    const releaseValues = (name: string): unknown =>
      field(
        infrastructure.find((obj) => obj.kind === "HelmRelease" && nameOf(obj) === name),
        "spec",
        "values",
      );
    const chartRequests = [
      field(releaseValues("traefik"), "resources", "requests"),
      ...[[], ["webhook"], ["cainjector"], ["startupapicheck"]].map((component) =>
        field(releaseValues("cert-manager"), ...component, "resources", "requests"),
      ),
    ] as Obj[];
    const pods = quotaUsage(infrastructure);
    const sum = (key: "cpu" | "memory", scale: number) =>
      chartRequests.reduce((total, requests) => total + parseQuantity(String(requests[key]))! * scale, 0);
    const requested = {
      cpu: pods["requests.cpu"] + sum("cpu", 1000) + k0sAndFlux.cpu,
      memory: pods["requests.memory"] + sum("memory", 1) + k0sAndFlux.memory,
    };
    console.log(`the platform's pods request at peak ${requested.cpu}m CPU and ${(requested.memory / MI).toFixed(0)}Mi`);
    expect(pods["requests.memory"], "monitoring is counted").toBeGreaterThanOrEqual(BUDGET["requests.memory"] / 2);
    expect(requested.cpu).toBeLessThanOrEqual(PLATFORM_REQUESTS.cpu * 1000);
    expect(requested.memory).toBeLessThanOrEqual(PLATFORM_REQUESTS.memory);
    // Counted close to what it is, so the check warns neither too late nor for nothing.
    expect(requested.cpu).toBeGreaterThan(PLATFORM_REQUESTS.cpu * 1000 * 0.8);
    expect(requested.memory).toBeGreaterThan(PLATFORM_REQUESTS.memory * 0.8);
  });
});

describe("alerts for the soak (infrastructure/base/monitoring)", () => {
  const WEBHOOK = "https://hooks.example.test/services/T0/B0/secret-path";
  /** What infra-controllers applies on `cluster` once Flux substitutes what the program wrote for a stack with `webhook`. */
  const controllers = (cluster: string, webhook: string): Obj[] => {
    const ks = fluxKustomizations(cluster).find((obj) => nameOf(obj) === "infra-controllers")!;
    return fluxApplied(GITOPS, ks, {
      [ALERT_RECEIVER_VARIABLE]: webhook === "" ? "none" : "webhook",
      [ALERT_WEBHOOK_URL_VARIABLE]: webhook,
    });
  };
  const find = (objects: Obj[], kind: string, name: string): Obj =>
    objects.find((obj) => obj.kind === kind && nameOf(obj) === name) ?? expect.fail(`no ${kind} ${name}`);
  const container = (objects: Obj[], deployment: string): Obj =>
    (field(find(objects, "Deployment", deployment), "spec", "template", "spec", "containers") as Obj[])[0];
  const flag = (args: unknown, name: string): string[] =>
    (args as string[]).filter((arg) => arg.startsWith(`${name}=`)).map((arg) => arg.slice(name.length + 1));
  /** Where a pod mounts a ConfigMap's or Secret's volume, by the object's name. */
  const mountOf = (objects: Obj[], deployment: string, kind: "configMap" | "secret", name: string): string => {
    const spec = field(find(objects, "Deployment", deployment), "spec", "template", "spec") as Obj;
    const volume = (spec.volumes as Obj[]).find((entry) => field(entry, kind, kind === "secret" ? "secretName" : "name") === name)!;
    return String((container(objects, deployment).volumeMounts as Obj[]).find((mount) => mount.name === volume.name)!.mountPath);
  };
  /** A Service's in-cluster URL for a pod's named port, as a client inside the cluster would write it. */
  const serviceUrl = (objects: Obj[], name: string) => {
    const service = find(objects, "Service", name);
    const port = (field(service, "spec", "ports") as Obj[])[0];
    const pod = objects.find(
      (obj) =>
        obj.kind === "Deployment" &&
        Object.entries(field(service, "spec", "selector") as Obj).every(
          ([key, value]) => field(obj, "spec", "template", "metadata", "labels", key) === value,
        ),
    );
    expect(pod, `Service ${name} selects a pod`).toBeDefined();
    return `${nameOf(service)}.monitoring.svc:${String(port.port)}`;
  };
  const alertmanagerConfig = (objects: Obj[]) =>
    parse(String(field(find(objects, "ConfigMap", "alertmanager"), "data", "alertmanager.yml")));
  const rules = (objects: Obj[]) =>
    (parse(String(field(find(objects, "ConfigMap", "alert-rules"), "data", "soak.yaml"))).groups as Obj[]).flatMap(
      (group) => group.rules as Obj[],
    );

  it.each(Object.keys(CLUSTERS))(
    "%s: infra-controllers substitutes the receiver and the webhook from what the Pulumi program writes, nothing else",
    (cluster) => {
      const ks = fluxKustomizations(cluster).find((obj) => nameOf(obj) === "infra-controllers")!;
      expect(field(ks, "spec", "postBuild")).toEqual({
        substituteFrom: [
          { kind: "ConfigMap", name: CLUSTER_SETTINGS_NAME },
          { kind: "Secret", name: CLUSTER_SECRETS_NAME },
        ],
      });
      // fluxApplied refuses a ${name} it has no value for: these two are all the folder uses.
      const objects = controllers(cluster, WEBHOOK);
      expect(alertmanagerConfig(objects).route.receiver).toBe("webhook");
      expect(field(find(objects, "Secret", "alertmanager-webhook"), "stringData")).toEqual({ url: WEBHOOK });
      // The URL reaches no other object: not the config Alertmanager logs, not a pod's annotations.
      expect(objects.filter((obj) => JSON.stringify(obj).includes(WEBHOOK)).map(idOf)).toEqual(["Secret/alertmanager-webhook"]);
    },
  );

  it("delivers to the webhook file Alertmanager mounts, with resolutions; without a webhook, to a receiver that sends nothing", () => {
    const objects = controllers("remote", WEBHOOK);
    const config = alertmanagerConfig(objects);
    const receivers = Object.fromEntries((config.receivers as Obj[]).map((receiver) => [receiver.name, receiver]));
    const urlFile = `${mountOf(objects, "alertmanager", "secret", "alertmanager-webhook")}/url`;
    expect(receivers.webhook.webhook_configs).toEqual([{ url_file: urlFile, send_resolved: true }]);
    const configFile = flag(container(objects, "alertmanager").args, "--config.file")[0];
    expect(configFile).toBe(`${mountOf(objects, "alertmanager", "configMap", "alertmanager")}/alertmanager.yml`);
    const silent = controllers("local", "");
    expect(alertmanagerConfig(silent).route.receiver).toBe("none");
    expect(Object.keys(receivers)).toContain("none");
    expect(receivers.none).toEqual({ name: "none" });
    // A new receiver restarts Alertmanager, which reads its configuration only at start.
    const annotations = (objects: Obj[]) =>
      field(find(objects, "Deployment", "alertmanager"), "spec", "template", "metadata", "annotations");
    expect(annotations(objects)).not.toEqual(annotations(silent));
    // One replica: no gossip port listening for peers.
    expect(flag(container(objects, "alertmanager").args, "--cluster.listen-address")).toEqual([""]);
  });

  it("wires vmalert to the rules, VictoriaMetrics and Alertmanager, and VictoriaMetrics to the Kustomizations' readiness", () => {
    const objects = controllers("remote", WEBHOOK);
    const args = container(objects, "vmalert").args;
    const rulesDir = mountOf(objects, "vmalert", "configMap", "alert-rules");
    expect(flag(args, "-rule")).toEqual([`${rulesDir}/*.yaml`]);
    expect(Object.keys(field(find(objects, "ConfigMap", "alert-rules"), "data") as Obj).every((key) => key.endsWith(".yaml"))).toBe(true);
    expect(flag(args, "-notifier.url")).toEqual([`http://${serviceUrl(objects, "alertmanager")}`]);
    for (const name of ["-datasource.url", "-remoteWrite.url", "-remoteRead.url"])
      expect(flag(args, name), name).toEqual([`http://${serviceUrl(objects, "victoria-metrics")}`]);
    const scrape = parse(String(field(find(objects, "ConfigMap", "victoria-metrics-scrape"), "data", "scrape.yaml")));
    const job = (scrape.scrape_configs as Obj[]).find((entry) => entry.job_name === "flux-readiness")!;
    expect(field(job, "static_configs")).toEqual([{ targets: [serviceUrl(objects, "flux-readiness")] }]);
    const exporter = parse(String(field(find(objects, "ConfigMap", "flux-readiness"), "data", "config.yml")));
    expect(Object.keys(exporter.modules)).toEqual(field(job, "params", "module"));
    // It may list Kustomizations, and nothing else.
    expect(field(find(objects, "ClusterRole", "flux-readiness"), "rules")).toEqual([
      { apiGroups: ["kustomize.toolkit.fluxcd.io"], resources: ["kustomizations"], verbs: ["list"] },
    ]);
  });

  it("watches restarts, OOM kills, memory growth, Kustomizations not Ready and its own inputs", () => {
    const byName = Object.fromEntries(rules(controllers("remote", WEBHOOK)).map((rule): [string, Obj] => [String(rule.alert), rule]));
    expect(Object.keys(byName).sort()).toEqual(
      ["ContainerMemoryGrowing", "ContainerOOMKilled", "ContainerRestarted", "FluxKustomizationNotReady", "MonitoringTargetDown"].sort(),
    );
    // The restart rule counts runs as the soak guard does: a series per container ID.
    expect(byName.ContainerRestarted.expr).toContain("container_start_time_seconds");
    expect(byName.FluxKustomizationNotReady.expr).toContain("flux_kustomization_ready");
    for (const rule of Object.values(byName)) expect(field(rule, "annotations", "summary"), String(rule.alert)).toMatch(/\{\{ \$labels\./);
  });
});

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  ALERT_WEBHOOK_URL_VARIABLE,
  CLUSTER_SECRETS_NAME,
  CLUSTER_SETTINGS_NAME,
  FLUX_NAMESPACE,
  FLUX_SYNC_NAME,
  fluxInstallManifestUrl,
  KUSTOMIZE_CONTROLLER,
  lockDownControllers,
  onlyDefinitions,
  onlyNamespace,
  SOPS_SECRET_NAME,
  withoutNamespaceOrDefinitions,
} from "./lib/flux";
import type { FluxAuth } from "./lib/fluxConfig";
import { gitCredentials, gitRepositorySpec } from "./lib/gitCredentials";
import { SopsAgeKey, type AgeKeyOptions } from "./sopsAgeKey";

export interface FluxBootstrapArgs {
  /** Pinned Flux release, for example v2.7.3. */
  readonly version: string;
  /** A local install manifest that replaces the release download. Defaults to the release's install.yaml. */
  readonly manifestPath?: string;
  /** Whether `pulumi up` waits for Flux's Deployments to become ready. Defaults to true. */
  readonly waitForControllers?: boolean;
  /** The GitOps repository's URL (https:// or ssh://). */
  readonly url: string;
  /** How Flux authenticates to it: a generated deploy key (ssh://), a token or none (https://). */
  readonly auth: FluxAuth;
  readonly branch: string;
  /** Path in the repository that the root Kustomization syncs, for example ./clusters/local. */
  readonly path: string;
  /** How often Flux polls the repository and reconciles, for example 1m. */
  readonly interval: string;
  /**
   * Values for the repository's `${key}` substitutions, written to the cluster-settings ConfigMap
   * before Flux syncs; none, no ConfigMap.
   */
  readonly clusterSettings?: Readonly<Record<string, string>>;
  /**
   * Where the repository's Alertmanager delivers alerts ("" for nowhere), written to the
   * cluster-secrets Secret for its `${alert_webhook_url}`; kept secret throughout.
   */
  readonly alertWebhookUrl?: pulumi.Input<string>;
  /** The cluster's age key: its generation, and an imported identity; defaults to one generated. */
  readonly ageKey?: AgeKeyOptions;
}

/**
 * Flux at a pinned version, the cluster's age key in the `sops-age` Secret, and the GitRepository
 * plus root Kustomization that sync the cluster's path with SOPS decryption. The Secret exists before
 * Flux syncs anything; the repository's own Kustomizations (infrastructure before apps) take it
 * from there.
 */
export class FluxBootstrap extends pulumi.ComponentResource {
  /** The cluster's age recipient, for `.sops.yaml`. */
  public readonly ageRecipient: pulumi.Output<string>;
  /** Flux's namespace, known once it exists. */
  public readonly namespace: pulumi.Output<string>;
  /** The public half of Flux's deploy key, for an ssh:// repository: add it to the repository, read-only. */
  public readonly deployKey?: pulumi.Output<string>;

  constructor(name: string, args: FluxBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:FluxBootstrap", name, {}, opts);

    // The manifest's Namespace is applied first, and every other object of the manifest waits for
    // it: ConfigFile creates its objects all at once, and a component's dependsOn does not reach its
    // children (found on a bare API server: "namespaces \"flux-system\" not found"). The controllers
    // also wait for Flux's CRDs (onlyDefinitions says why). Each part keeps its objects' URNs, which
    // name the ConfigFile's type and not its name, so a stack made before the split moves nothing.
    const manifest = args.manifestPath ?? fluxInstallManifestUrl(args.version);
    const namespaceFile = new k8s.yaml.ConfigFile(
      `${name}-namespace`,
      { file: manifest, transformations: [onlyNamespace] },
      { parent: this },
    );
    const namespaceObject = namespaceFile.getResource("v1/Namespace", FLUX_NAMESPACE);
    const definitionsFile = new k8s.yaml.ConfigFile(
      `${name}-crds`,
      { file: manifest, transformations: [onlyDefinitions] },
      { parent: this },
    );
    const definitions = definitionsFile.resources.apply((resources) => [namespaceObject, ...Object.values(resources)]);
    new k8s.yaml.ConfigFile(
      `${name}-install`,
      {
        file: manifest,
        transformations: [
          withoutNamespaceOrDefinitions,
          lockDownControllers,
          (obj: { kind?: string }, objectOpts: pulumi.CustomResourceOptions) => {
            objectOpts.dependsOn = obj.kind === "Deployment" ? definitions : [namespaceObject];
          },
        ],
        skipAwait: !(args.waitForControllers ?? true),
      },
      { parent: this },
    );
    // The sync objects need Flux's CRDs: depend on them directly.
    const crds = ["gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io"].map((crd) =>
      definitionsFile.getResource("apiextensions.k8s.io/v1/CustomResourceDefinition", crd),
    );

    // Taking the namespace from the installed Namespace object makes the Secret wait for it.
    const namespace = namespaceObject.metadata.name;
    this.namespace = namespace;
    const ageKey = new SopsAgeKey(`${name}-sops-age`, { namespace, key: args.ageKey }, { parent: this });
    this.ageRecipient = ageKey.recipient;
    const settings = [
      ...(Object.keys(args.clusterSettings ?? {}).length === 0
        ? []
        : [
            new k8s.core.v1.ConfigMap(
              `${name}-cluster-settings`,
              { metadata: { name: CLUSTER_SETTINGS_NAME, namespace }, data: { ...args.clusterSettings } },
              { parent: this },
            ),
          ]),
      new k8s.core.v1.Secret(
        `${name}-cluster-secrets`,
        {
          metadata: { name: CLUSTER_SECRETS_NAME, namespace },
          type: "Opaque",
          stringData: { [ALERT_WEBHOOK_URL_VARIABLE]: pulumi.secret(args.alertWebhookUrl ?? "") },
        },
        { parent: this },
      ),
    ];

    const credentials = gitCredentials(`${name}-git`, { name: FLUX_SYNC_NAME, namespace }, args.auth, `flux@${pulumi.getStack()}`, this);
    this.deployKey = credentials?.deployKey;
    const source = new k8s.apiextensions.CustomResource(
      `${name}-source`,
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "GitRepository",
        metadata: { name: FLUX_SYNC_NAME, namespace: FLUX_NAMESPACE },
        spec: gitRepositorySpec(args, credentials),
      },
      { parent: this, dependsOn: [namespaceObject, ...crds, ageKey, ...(credentials === undefined ? [] : [credentials.secret])] },
    );

    new k8s.apiextensions.CustomResource(
      `${name}-sync`,
      {
        apiVersion: "kustomize.toolkit.fluxcd.io/v1",
        kind: "Kustomization",
        metadata: { name: FLUX_SYNC_NAME, namespace: FLUX_NAMESPACE },
        spec: {
          interval: args.interval,
          path: args.path,
          prune: true,
          // The controllers impersonate `default` unless told otherwise (lockDownControllers); the
          // cluster's own folder is the platform's, so it keeps Flux's account.
          serviceAccountName: KUSTOMIZE_CONTROLLER,
          sourceRef: { kind: "GitRepository", name: FLUX_SYNC_NAME },
          decryption: { provider: "sops", secretRef: { name: SOPS_SECRET_NAME } },
        },
      },
      { parent: this, dependsOn: [namespaceObject, ...crds, ageKey, ...settings, source] },
    );

    this.registerOutputs({ ageRecipient: this.ageRecipient, namespace: this.namespace, deployKey: this.deployKey });
  }
}

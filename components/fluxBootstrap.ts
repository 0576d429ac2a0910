import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  enableControllerDecryption,
  FLUX_NAMESPACE,
  FLUX_SYNC_NAME,
  fluxInstallManifestUrl,
  SOPS_AGE_KEY,
  SOPS_SECRET_NAME,
} from "./lib/flux";

export interface FluxBootstrapArgs {
  /** Pinned Flux release, for example v2.7.5. */
  readonly version: string;
  /** A local install manifest that replaces the release download. Defaults to the release's install.yaml. */
  readonly manifestPath?: string;
  /** Whether `pulumi up` waits for Flux's Deployments to become ready. Defaults to true. */
  readonly waitForControllers?: boolean;
  /** The GitOps repository's URL. */
  readonly url: string;
  readonly branch: string;
  /** Path in the repository that the root Kustomization syncs, for example ./clusters/local. */
  readonly path: string;
  /** How often Flux polls the repository and reconciles, for example 1m. */
  readonly interval: string;
  /** The cluster's age identity, written to the `sops-age` Secret before Flux syncs anything. */
  readonly sopsAgeIdentity: pulumi.Input<string>;
}

/**
 * Flux at a pinned version, the `sops-age` decryption Secret, and the GitRepository plus root
 * Kustomization that sync the cluster's path with SOPS decryption. The repository's own
 * Kustomizations (infrastructure before apps) take it from there.
 */
export class FluxBootstrap extends pulumi.ComponentResource {
  /** Name of the root Kustomization in flux-system. */
  public readonly kustomizationName: pulumi.Output<string>;

  constructor(name: string, args: FluxBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:FluxBootstrap", name, {}, opts);

    const install = new k8s.yaml.ConfigFile(
      `${name}-install`,
      {
        file: args.manifestPath ?? fluxInstallManifestUrl(args.version),
        transformations: [enableControllerDecryption],
        skipAwait: !(args.waitForControllers ?? true),
      },
      { parent: this },
    );

    const decryptionSecret = new k8s.core.v1.Secret(
      `${name}-sops-age`,
      {
        metadata: { name: SOPS_SECRET_NAME, namespace: FLUX_NAMESPACE },
        type: "Opaque",
        stringData: { [SOPS_AGE_KEY]: args.sopsAgeIdentity },
      },
      { parent: this, dependsOn: [install] },
    );

    const sourceRef = { kind: "GitRepository", name: FLUX_SYNC_NAME };
    const source = new k8s.apiextensions.CustomResource(
      `${name}-source`,
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "GitRepository",
        metadata: { name: FLUX_SYNC_NAME, namespace: FLUX_NAMESPACE },
        spec: { interval: args.interval, url: args.url, ref: { branch: args.branch } },
      },
      { parent: this, dependsOn: [install, decryptionSecret] },
    );

    const sync = new k8s.apiextensions.CustomResource(
      `${name}-sync`,
      {
        apiVersion: "kustomize.toolkit.fluxcd.io/v1",
        kind: "Kustomization",
        metadata: { name: FLUX_SYNC_NAME, namespace: FLUX_NAMESPACE },
        spec: {
          interval: args.interval,
          path: args.path,
          prune: true,
          sourceRef,
          decryption: { provider: "sops", secretRef: { name: SOPS_SECRET_NAME } },
        },
      },
      { parent: this, dependsOn: [install, decryptionSecret, source] },
    );

    this.kustomizationName = sync.metadata.name;
    this.registerOutputs({ kustomizationName: this.kustomizationName });
  }
}

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { environmentSopsSecret, tenantServiceAccount } from "./lib/flux";
import type { FluxAuth } from "./lib/fluxConfig";
import { gitCredentials, gitRepositorySpec } from "./lib/gitCredentials";

/**
 * The Kustomization the starter's platform folders end with (clusters/<target>/infrastructure.yaml):
 * a client's apps wait for Traefik and the issuers, as the platform's own apps do.
 */
export const PLATFORM_READY_KUSTOMIZATION = "infra-configs";

export interface ClientRepositoryArgs {
  /** The environment (namespace) the repository is applied into, and nothing else. */
  readonly environment: string;
  readonly url: string;
  readonly auth: FluxAuth;
  readonly branch: string;
  /** The folder Flux applies, for example ./apps/overlays/dev. */
  readonly path: string;
  readonly interval: string;
  /** Flux's namespace; an Output of its Namespace object makes the credentials wait for it. */
  readonly fluxNamespace: pulumi.Input<string>;
  /** What must exist first: Flux's CRDs, the environment's tenant account and age key. */
  readonly after?: pulumi.Input<pulumi.Resource>[];
}

/**
 * A client's own GitOps repository, followed for one environment: a GitRepository and a
 * Kustomization, both named after the environment in Flux's namespace, beside the platform
 * repository's. The Kustomization reconciles as the environment's tenant account and decrypts with
 * the environment's age key alone, and puts every object in the environment's namespace, so a
 * client's repository reaches nothing of the platform or of another client; the platform's
 * repository keeps the cluster-wide parts. Several clients on one workstation are several of these.
 */
export class ClientRepository extends pulumi.ComponentResource {
  /** The public half of the repository's deploy key (ssh://): add it to the repository, read-only. */
  public readonly deployKey?: pulumi.Output<string>;

  constructor(name: string, args: ClientRepositoryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:ClientRepository", name, {}, opts);

    const sourceName = args.environment;
    const credentials = gitCredentials(
      `${name}-git`,
      { name: `${sourceName}-git`, namespace: args.fluxNamespace },
      args.auth,
      `flux-${args.environment}@${pulumi.getStack()}`,
      this,
    );
    this.deployKey = credentials?.deployKey;
    const source = new k8s.apiextensions.CustomResource(
      `${name}-source`,
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "GitRepository",
        metadata: { name: sourceName, namespace: args.fluxNamespace },
        spec: gitRepositorySpec(args, credentials),
      },
      { parent: this, dependsOn: [...(args.after ?? []), ...(credentials === undefined ? [] : [credentials.secret])] },
    );
    new k8s.apiextensions.CustomResource(
      `${name}-sync`,
      {
        apiVersion: "kustomize.toolkit.fluxcd.io/v1",
        kind: "Kustomization",
        metadata: { name: sourceName, namespace: args.fluxNamespace },
        spec: {
          dependsOn: [{ name: PLATFORM_READY_KUSTOMIZATION }],
          interval: args.interval,
          retryInterval: "1m",
          timeout: "5m",
          sourceRef: { kind: "GitRepository", name: sourceName },
          path: args.path,
          prune: true,
          wait: true,
          targetNamespace: args.environment,
          serviceAccountName: tenantServiceAccount(args.environment),
          decryption: { provider: "sops", secretRef: { name: environmentSopsSecret(args.environment) } },
        },
      },
      { parent: this, dependsOn: [...(args.after ?? []), source] },
    );

    this.registerOutputs({ deployKey: this.deployKey });
  }
}

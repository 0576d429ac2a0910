/**
 * Flux names and the install-manifest transformation. Pure: creates no resources.
 */

/** Namespace of Flux's controllers and bootstrap objects (https://fluxcd.io/flux/installation/). */
export const FLUX_NAMESPACE = "flux-system";
/** Name of both the GitRepository and the root Kustomization, as `flux bootstrap` names them. */
export const FLUX_SYNC_NAME = "flux-system";
/** The Secret holding the cluster's age identity (https://fluxcd.io/flux/guides/mozilla-sops/). */
export const SOPS_SECRET_NAME = "sops-age";
/**
 * The Secret holding one environment's age identity: its Kustomizations decrypt with it alone, so a
 * file encrypted for another environment (or copied from its folder) is never decrypted here.
 */
export function environmentSopsSecret(environment: string): string {
  return `${SOPS_SECRET_NAME}-${environment}`;
}
/** kustomize-controller only reads age identities from Secret keys ending in `.agekey`. */
export const SOPS_AGE_KEY = "age.agekey";

/**
 * The ConfigMap in flux-system that carries stack settings into the GitOps repository: a
 * Kustomization's `postBuild.substituteFrom` replaces `${<key>}` with its values.
 */
export const CLUSTER_SETTINGS_NAME = "cluster-settings";
/** The contact address of the ACME ClusterIssuers, from the stack's acmeEmail. */
export const ACME_EMAIL_VARIABLE = "acme_email";
/** Which of Alertmanager's receivers the soak's alerts go to: `webhook`, or `none` without alertWebhookUrl. */
export const ALERT_RECEIVER_VARIABLE = "alert_receiver";

/**
 * The Secret in flux-system that carries the stack's secret settings into the GitOps repository, as
 * the cluster-settings ConfigMap carries the others: only the Kustomizations that name it substitute
 * from it, and its values never reach Git.
 */
export const CLUSTER_SECRETS_NAME = "cluster-secrets";
/** The webhook Alertmanager delivers to, from the stack's alertWebhookUrl ("" without one). */
export const ALERT_WEBHOOK_URL_VARIABLE = "alert_webhook_url";

/** Flux's own service accounts, which platform folders (clusters/, infrastructure/) reconcile as. */
export const KUSTOMIZE_CONTROLLER = "kustomize-controller";
export const HELM_CONTROLLER = "helm-controller";

/**
 * The service account, in Flux's namespace, that an environment's Kustomizations (apps-<env>,
 * secrets-<env>) reconcile as: bound to `admin` in that environment's namespace and nowhere else.
 * In Flux's namespace, not the tenant's, so nothing a tenant applies can name it.
 */
export function tenantServiceAccount(environment: string): string {
  return `tenant-${environment}`;
}

/**
 * Flux's multi-tenancy lockdown (https://fluxcd.io/flux/installation/configuration/multitenancy/):
 * a Kustomization or HelmRelease that names no service account reconciles as `default` of its own
 * namespace, which holds no rights, instead of as the controller's cluster-admin account; nothing
 * may reference a source, Secret or dependency in another namespace; and kustomize may not fetch
 * remote bases. No controller-wide `--sops-age-secret` either: decryption is per Kustomization, so a
 * Kustomization a tenant creates cannot decrypt with the cluster's key.
 *
 * Beside the lockdown, a dependency that is not yet at a commit is looked at again after 5 s rather
 * than the default 30 s: every commit walks the chain infra-controllers, infra-configs, apps, so the
 * default added a minute before an app's change (or its failure) showed.
 */
export const CONTROLLER_FLAGS: Readonly<Record<string, readonly string[]>> = {
  [KUSTOMIZE_CONTROLLER]: [
    "--no-cross-namespace-refs=true",
    "--default-service-account=default",
    "--no-remote-bases=true",
    "--requeue-dependency=5s",
  ],
  [HELM_CONTROLLER]: ["--no-cross-namespace-refs=true", "--default-service-account=default", "--requeue-dependency=5s"],
};

/** The release's all-in-one install manifest for a pinned Flux version. */
export function fluxInstallManifestUrl(version: string): string {
  return `https://github.com/fluxcd/flux2/releases/download/${version}/install.yaml`;
}

interface Container {
  name?: string;
  args?: string[];
}

interface ManifestObject {
  [field: string]: unknown;
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: { template?: { spec?: { containers?: Container[] } } };
}

/**
 * Transformation for the Flux install manifest: gives kustomize-controller and helm-controller the
 * lockdown flags, replacing any value a flag already has. Idempotent; every other object untouched.
 */
export function lockDownControllers(obj: ManifestObject): void {
  const flags = obj.kind === "Deployment" ? CONTROLLER_FLAGS[obj.metadata?.name ?? ""] : undefined;
  if (flags === undefined) return;
  const containers = obj.spec?.template?.spec?.containers ?? [];
  const manager = containers.find((container) => container.name === "manager") ?? containers[0];
  if (manager === undefined) {
    throw new Error(`the ${obj.metadata?.name} Deployment in the Flux manifest has no container to configure`);
  }
  const flagName = (arg: string) => arg.split("=")[0];
  const set = new Set(flags.map(flagName));
  manager.args = [...(manager.args ?? []).filter((arg) => !set.has(flagName(arg)) && !arg.startsWith("--sops-age-secret")), ...flags];
}

/**
 * Turns an object of the manifest into an empty List, which ConfigFile applies as nothing: the way
 * to leave an object out of a manifest that is only read at run time (the release's URL). It keeps
 * a metadata field, which ConfigFile's own skipAwait transformation annotates.
 */
function omit(obj: ManifestObject): void {
  for (const field of Object.keys(obj)) delete obj[field];
  Object.assign(obj, { apiVersion: "v1", kind: "List", metadata: {}, items: [] });
}

/**
 * The install manifest is applied in three parts, its Namespace first: ConfigFile creates every
 * object at once, and a namespaced object that reaches the API server before its Namespace fails
 * (seen on a bare API server: "namespaces \"flux-system\" not found").
 */
export function onlyNamespace(obj: ManifestObject): void {
  if (obj.kind !== "Namespace") omit(obj);
}

/**
 * Then Flux's CRDs, which its controllers need before they start: a controller started before
 * them exits, and the kubelet's back-off holds it for 10 s and more (seen on the node: helm-controller
 * in BackOff, Flux's first sync 15 s later than kubectl's CRDs-first apply).
 */
export function onlyDefinitions(obj: ManifestObject): void {
  if (obj.kind !== "CustomResourceDefinition") omit(obj);
}

/** The rest of the install manifest: its controllers and what they run as. */
export function withoutNamespaceOrDefinitions(obj: ManifestObject): void {
  if (obj.kind === "Namespace" || obj.kind === "CustomResourceDefinition") omit(obj);
}

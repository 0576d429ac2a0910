/**
 * Flux names and the install-manifest transformation. Pure: creates no resources.
 */

/** Namespace of Flux's controllers and bootstrap objects (https://fluxcd.io/flux/installation/). */
export const FLUX_NAMESPACE = "flux-system";
/** Name of both the GitRepository and the root Kustomization, as `flux bootstrap` names them. */
export const FLUX_SYNC_NAME = "flux-system";
/** The Secret holding the cluster's age identity (https://fluxcd.io/flux/guides/mozilla-sops/). */
export const SOPS_SECRET_NAME = "sops-age";
/** kustomize-controller only reads age identities from Secret keys ending in `.agekey`. */
export const SOPS_AGE_KEY = "age.agekey";

/**
 * The ConfigMap in flux-system that carries stack settings into the GitOps repository: a
 * Kustomization's `postBuild.substituteFrom` replaces `${<key>}` with its values.
 */
export const CLUSTER_SETTINGS_NAME = "cluster-settings";
/** The contact address of the ACME ClusterIssuers, from the stack's acmeEmail. */
export const ACME_EMAIL_VARIABLE = "acme_email";

const KUSTOMIZE_CONTROLLER = "kustomize-controller";
/**
 * Controller-level decryption (Flux ≥ 2.7): kustomize-controller also uses this Secret for
 * Kustomizations that name no `decryption.secretRef`, so the repository's own Kustomizations decrypt
 * SOPS files too (fluxcd/kustomize-controller#1465).
 */
export const SOPS_AGE_SECRET_FLAG = `--sops-age-secret=${SOPS_SECRET_NAME}`;

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
 * Transformation for the Flux install manifest: points kustomize-controller at the `sops-age` Secret.
 * Idempotent, and leaves every other object untouched.
 */
export function enableControllerDecryption(obj: ManifestObject): void {
  if (obj.kind !== "Deployment" || obj.metadata?.name !== KUSTOMIZE_CONTROLLER) return;
  const containers = obj.spec?.template?.spec?.containers ?? [];
  const manager = containers.find((container) => container.name === "manager") ?? containers[0];
  if (manager === undefined) {
    throw new Error(`the ${KUSTOMIZE_CONTROLLER} Deployment in the Flux manifest has no container to configure`);
  }
  const args = manager.args ?? [];
  if (!args.some((arg) => arg.startsWith("--sops-age-secret"))) manager.args = [...args, SOPS_AGE_SECRET_FLAG];
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
 * The install manifest is applied in two parts, its Namespace first: ConfigFile creates every
 * object at once, and a namespaced object that reaches the API server before its Namespace fails
 * (seen on a bare API server: "namespaces \"flux-system\" not found").
 */
export function onlyNamespace(obj: ManifestObject): void {
  if (obj.kind !== "Namespace") omit(obj);
}

/** The rest of the install manifest, applied once its Namespace exists. */
export function withoutNamespace(obj: ManifestObject): void {
  if (obj.kind === "Namespace") omit(obj);
}

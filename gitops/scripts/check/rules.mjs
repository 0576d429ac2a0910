// The check's rules that need no tool: Secrets only SOPS-encrypted and only where .sops.yaml has a
// rule for them, Flux's variable substitution, and Ingresses that name an issuer their cluster has.
// Pure: each takes text or objects and returns what it refuses.
import { parseAllDocuments, parse } from "yaml";

/** A value that is only a Flux substitution, `${name}`: Flux fills it at apply time, so Git holds no secret. */
const ONLY_VARIABLE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** The documents of a YAML file as plain objects; a file that does not parse yields `error`. */
export function yamlDocuments(text) {
  try {
    return {
      docs: parseAllDocuments(text)
        .map((doc) => doc.toJS())
        .filter((doc) => doc !== null && typeof doc === "object"),
    };
  } catch (error) {
    return { docs: [], error: error.message };
  }
}

/** The creation rules' path_regex of a .sops.yaml, in order (undefined without a .sops.yaml). */
export function sopsPathRules(sopsYamlText) {
  if (sopsYamlText === undefined) return undefined;
  return (parse(sopsYamlText)?.creation_rules ?? []).map((rule) => rule.path_regex).filter((regex) => typeof regex === "string");
}

/**
 * Refusals for the repository's YAML files ({ path, text }, path relative to its root, `/`-separated):
 * a Secret that is not SOPS-encrypted (unless each of its values is only a `${variable}` Flux
 * substitutes), and a SOPS-encrypted file that no .sops.yaml creation rule matches (sops uses the
 * first rule whose path_regex matches, so such a file was encrypted to keys nobody chose for it).
 */
export function secretFindings(files, pathRules) {
  const findings = [];
  for (const { path, text } of files) {
    const { docs } = yamlDocuments(text);
    const encrypted = docs.some((doc) => doc.sops !== undefined);
    for (const doc of docs) {
      if (doc.kind !== "Secret" || doc.sops !== undefined) continue;
      const values = [...Object.values(doc.data ?? {}), ...Object.values(doc.stringData ?? {})];
      if (values.length > 0 && values.every((value) => typeof value === "string" && ONLY_VARIABLE.test(value))) continue;
      findings.push(
        `${path}: Secret ${doc.metadata?.name ?? "(unnamed)"} is not SOPS-encrypted; encrypt it (sops --encrypt --in-place ${path}) before committing`,
      );
    }
    if (!encrypted) continue;
    if (pathRules === undefined)
      findings.push(
        `${path}: SOPS-encrypted, but the repository has no .sops.yaml; write it with the k0s-platform project's npm run sops-config so every file is encrypted to the keys of where it lives`,
      );
    else if (!pathRules.some((regex) => new RegExp(regex).test(path))) {
      findings.push(
        `${path}: SOPS-encrypted, but no creation rule of .sops.yaml matches its path; move it under a folder a rule covers (such as apps/overlays/<env>/secrets/) and re-encrypt it there`,
      );
    }
  }
  return findings;
}

/**
 * Flux's post-build substitution (kustomize-controller's envsubst): `${name}` and `${name:=default}`,
 * `$${name}` left as `${name}`, an unset name with no default becoming empty, and objects annotated
 * `kustomize.toolkit.fluxcd.io/substitute: disabled` left alone.
 */
export function substitute(objects, variables) {
  const replace = (text) =>
    text.replace(/\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}/g, (whole, escaped, name, fallback) =>
      escaped ? whole.slice(1) : (variables[name] ?? fallback ?? ""),
    );
  const walk = (value) => {
    if (typeof value === "string") return replace(value);
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === "object")
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [replace(k), walk(v)]));
    return value;
  };
  return objects.map((object) =>
    object?.metadata?.annotations?.["kustomize.toolkit.fluxcd.io/substitute"] === "disabled" ? object : walk(object),
  );
}

const ISSUER_KINDS = new Set(["ClusterIssuer", "Issuer"]);

/**
 * Refusals for one cluster: an Ingress whose `cert-manager.io/cluster-issuer` (or `issuer`)
 * annotation, or a Certificate whose issuerRef, names an issuer that none of the cluster's rendered
 * Kustomizations defines. `renders` is [{ label, objects }], label naming the Kustomization.
 */
export function issuerFindings(cluster, renders) {
  const clusterIssuers = new Set();
  const issuers = new Set();
  for (const { objects } of renders) {
    for (const object of objects) {
      if (object.apiVersion?.startsWith("cert-manager.io/") !== true || !ISSUER_KINDS.has(object.kind)) continue;
      if (object.kind === "ClusterIssuer") clusterIssuers.add(object.metadata?.name);
      else issuers.add(`${object.metadata?.namespace ?? "default"}/${object.metadata?.name}`);
    }
  }
  const known = (kind, namespace) =>
    kind === "ClusterIssuer"
      ? [...clusterIssuers].sort().join(", ") || "none"
      : [...issuers]
          .filter((key) => key.startsWith(`${namespace}/`))
          .sort()
          .join(", ") || "none";
  const findings = [];
  const refuse = (label, object, kind, name) => {
    const namespace = object.metadata?.namespace ?? "default";
    const exists = kind === "ClusterIssuer" ? clusterIssuers.has(name) : issuers.has(`${namespace}/${name}`);
    if (exists) return;
    findings.push(
      `cluster ${cluster}, ${label}: ${object.kind} ${namespace}/${object.metadata?.name} names ${kind} "${name}", which no ` +
        `Kustomization of this cluster defines (${kind === "ClusterIssuer" ? "ClusterIssuers" : `Issuers in ${namespace}`} there: ${known(kind, namespace)})`,
    );
  };
  for (const { label, objects } of renders) {
    for (const object of objects) {
      if (object.kind === "Ingress") {
        const annotations = object.metadata?.annotations ?? {};
        if (annotations["cert-manager.io/cluster-issuer"] !== undefined)
          refuse(label, object, "ClusterIssuer", annotations["cert-manager.io/cluster-issuer"]);
        if (annotations["cert-manager.io/issuer"] !== undefined) {
          const kind = annotations["cert-manager.io/issuer-kind"] ?? "Issuer";
          if (ISSUER_KINDS.has(kind)) refuse(label, object, kind, annotations["cert-manager.io/issuer"]);
        }
      } else if (object.kind === "Certificate" && object.apiVersion?.startsWith("cert-manager.io/")) {
        const ref = object.spec?.issuerRef ?? {};
        const group = ref.group ?? "cert-manager.io";
        if (group === "cert-manager.io" && ref.name !== undefined) refuse(label, object, ref.kind ?? "Issuer", ref.name);
      }
    }
  }
  return findings;
}

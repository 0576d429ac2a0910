import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LABELS } from "./environmentNamespace";
import { HOSTS_ANNOTATION } from "./lib/hostNames";

export interface HostNamePolicyArgs {
  /**
   * The one identity that may create cert-manager CertificateRequests in an environment namespace:
   * cert-manager's own controller, from the environment's Certificates. A request holds its host
   * names inside a CSR the API server cannot read, so a tenant's own request could name any host.
   */
  readonly certManagerUser: string;
}

/** The host patterns the request's namespace declares (HOSTS_ANNOTATION), or none. */
const ALLOWED_EXPRESSION = `has(namespaceObject.metadata.annotations) && '${HOSTS_ANNOTATION}' in namespaceObject.metadata.annotations ? namespaceObject.metadata.annotations['${HOSTS_ANNOTATION}'].split(',').filter(p, p != '') : []`;

/** CEL: whether one of the namespace's patterns covers `host`, as components/lib/hostNames.ts's hostMatches. */
function covers(host: string): string {
  return (
    `variables.allowed.exists(p, p == ${host} || (p.startsWith('*.') && ${host}.endsWith(p.substring(1)) && ` +
    `${host}.size() > p.size() - 1 && !${host}.substring(0, ${host}.size() - p.size() + 1).contains('.')))`
  );
}

const REFUSED =
  "' in namespace ' + namespaceObject.metadata.name + ': its host names must match ' + " +
  "(variables.allowed.size() == 0 ? 'none (it declares no hosts)' : variables.allowed.join(', ')) + " +
  "'; the stack config sets them (environments.' + namespaceObject.metadata.name + '.hosts)'";

const isResource = (resource: string) => `(request.resource.resource == '${resource}')`;

/**
 * Binds host names to namespaces, cluster-wide and in the API server itself (a
 * ValidatingAdmissionPolicy, so no webhook has to be up): in every environment namespace, an Ingress
 * must name hosts its namespace declares (no catch-all), a cert-manager Certificate may ask only for
 * them, and only cert-manager creates CertificateRequests. So a staging route cannot take
 * production's traffic, and staging cannot obtain a certificate for production's name.
 */
export class HostNamePolicy extends pulumi.ComponentResource {
  public readonly policyName: pulumi.Output<string>;

  constructor(name: string, args: HostNamePolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k0s-platform:index:HostNamePolicy", name, {}, opts);

    const policy = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
      `${name}-policy`,
      {
        metadata: { name: "environment-host-names" },
        spec: {
          failurePolicy: "Fail",
          matchConstraints: {
            resourceRules: [
              { apiGroups: ["networking.k8s.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["ingresses"] },
              { apiGroups: ["cert-manager.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["certificates"] },
              { apiGroups: ["cert-manager.io"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["certificaterequests"] },
            ],
          },
          variables: [{ name: "allowed", expression: ALLOWED_EXPRESSION }],
          validations: [
            {
              expression: `!${isResource("ingresses")} || !has(object.spec.defaultBackend)`,
              messageExpression: `'Ingress ' + object.metadata.name + ' in namespace ' + namespaceObject.metadata.name + ': a default backend would serve every host name; name the hosts in its rules'`,
              reason: "Forbidden",
            },
            {
              expression:
                `!${isResource("ingresses")} || ((!has(object.spec.rules) || object.spec.rules.all(r, has(r.host) && ${covers("r.host")})) && ` +
                `(!has(object.spec.tls) || object.spec.tls.all(t, !has(t.hosts) || t.hosts.all(h, ${covers("h")}))))`,
              messageExpression: `'Ingress ' + object.metadata.name + ${REFUSED}`,
              reason: "Forbidden",
            },
            {
              expression:
                `!${isResource("certificates")} || ((!has(object.spec.dnsNames) || object.spec.dnsNames.all(h, ${covers("h")})) && ` +
                `(!has(object.spec.commonName) || ${covers("object.spec.commonName")}))`,
              messageExpression: `'Certificate ' + object.metadata.name + ${REFUSED}`,
              reason: "Forbidden",
            },
            {
              expression: `!${isResource("certificaterequests")} || request.userInfo.username == '${args.certManagerUser}'`,
              messageExpression: `'CertificateRequest ' + object.metadata.name + ' in namespace ' + namespaceObject.metadata.name + ': only cert-manager creates certificate requests here; declare a Certificate instead'`,
              reason: "Forbidden",
            },
          ],
        },
      },
      { parent: this },
    );

    new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
      `${name}-binding`,
      {
        metadata: { name: "environment-host-names" },
        spec: {
          policyName: policy.metadata.name,
          validationActions: ["Deny"],
          matchResources: { namespaceSelector: { matchExpressions: [{ key: LABELS.environment, operator: "Exists" }] } },
        },
      },
      { parent: this },
    );

    this.policyName = policy.metadata.name;
    this.registerOutputs({ policyName: this.policyName });
  }
}

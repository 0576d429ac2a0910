// Per-run certificates and kubeconfigs for the throwaway control plane (e2e/harness/pki.ts mints
// them): a CA, the apiserver's serving certificate for 127.0.0.1, client certificates for the admin
// and the controller-manager, and the service-account signing key pair.
import * as fs from "node:fs";
import * as path from "node:path";
import { renderKubeconfig } from "../harness/kubeClient";
import { certificateAuthority, issue, serviceAccountKeys, subjectAltNames } from "../harness/pki";

/** Everything the control plane needs, minted into `dir`. */
export function makeCerts(dir: string): void {
  certificateAuthority(dir, "ca", "/CN=e2e-ca");
  // 10.96.0.1 is the in-cluster service IP of the apiserver; it is only a name in the cert.
  const sans = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "10.96.0.1"];
  issue(dir, "ca", "apiserver", "/CN=kube-apiserver", "serverAuth", subjectAltNames(sans));
  issue(dir, "ca", "admin", "/O=system:masters/CN=e2e-admin", "clientAuth");
  // With --use-service-account-credentials=false every controller acts as this
  // identity, so it needs to be able to do anything (namespace deletion included).
  issue(dir, "ca", "controller-manager", "/O=system:masters/CN=system:kube-controller-manager", "clientAuth");
  serviceAccountKeys(dir);
}

export function kubeconfig(dir: string, server: string, context: string, user: string): string {
  const pem = (file: string) => fs.readFileSync(path.join(dir, file), "utf8");
  return renderKubeconfig({
    server,
    context,
    user: `${context}-${user}`,
    ca: pem("ca.crt"),
    cert: pem(`${user}.crt`),
    key: pem(`${user}.key`),
  });
}

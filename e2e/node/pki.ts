/**
 * The node's certificates and kubeconfigs, minted per run with Debian's openssl, laid out under
 * <data-dir>/pki as k0s lays out its own (ca, server, admin.conf, ...): a cluster CA, the API
 * server's serving certificate for every address the config names, client certificates for each
 * control-plane component and the kubelet, the kubelet's serving certificate, the service-account
 * key pair, and the front-proxy CA the aggregation layer (metrics-server) needs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Effective } from "./k0sComponents";
import { renderKubeconfig } from "../harness/kubeClient";
import { certificateAuthority, issue, serviceAccountKeys, subjectAltNames } from "../harness/pki";

/** The kubeconfigs the node's processes and the tests use, by file name under pki/. */
export const KUBECONFIG_USERS = {
  admin: { subject: "/O=system:masters/CN=admin" },
  "controller-manager": { subject: "/CN=system:kube-controller-manager" },
  scheduler: { subject: "/CN=system:kube-scheduler" },
} as const;

/** Mints everything into `dir` (the node's <data-dir>/pki as seen from the machine). */
export function mintPki(dir: string, settings: Effective, nodeName: string, clusterDomain: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  certificateAuthority(dir, "ca", "/CN=kubernetes-ca");
  certificateAuthority(dir, "front-proxy-ca", "/CN=front-proxy-ca");
  const serverNames = [
    ...new Set([
      settings.apiAddress,
      ...settings.sans,
      settings.apiServiceIP,
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      `kubernetes.default.svc.${clusterDomain}`,
    ]),
  ];
  issue(dir, "ca", "server", "/CN=kube-apiserver", "serverAuth", subjectAltNames(serverNames));
  issue(dir, "ca", "apiserver-kubelet-client", "/O=system:masters/CN=apiserver-kubelet-client", "clientAuth");
  issue(dir, "front-proxy-ca", "front-proxy-client", "/CN=front-proxy-client", "clientAuth");
  for (const [user, { subject }] of Object.entries(KUBECONFIG_USERS)) issue(dir, "ca", user, subject, "clientAuth");
  issue(dir, "ca", "kubelet", `/O=system:nodes/CN=system:node:${nodeName}`, "clientAuth");
  issue(dir, "ca", "kubelet-server", `/CN=${nodeName}`, "serverAuth", subjectAltNames([settings.nodeIP, nodeName]));
  serviceAccountKeys(dir);
}

/** A kubeconfig for `user` (a certificate pair under `dir`), whose context is named `context`. */
export function kubeconfigFor(dir: string, user: string, server: string, context = "Default"): string {
  const pem = (file: string) => fs.readFileSync(path.join(dir, file), "utf8");
  return renderKubeconfig({ server, context, user, ca: pem("ca.crt"), cert: pem(`${user}.crt`), key: pem(`${user}.key`) });
}

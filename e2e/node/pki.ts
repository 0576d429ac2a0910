/**
 * The node's certificates and kubeconfigs, minted per run with Debian's openssl, laid out under
 * <data-dir>/pki as k0s lays out its own (ca, server, admin.conf, ...): a cluster CA, the API
 * server's serving certificate for every address the config names, client certificates for each
 * control-plane component and the kubelet, the kubelet's serving certificate, the service-account
 * key pair, and the front-proxy CA the aggregation layer (metrics-server) needs.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Effective } from "./k0sComponents";
import { renderKubeconfig } from "../harness/kubeClient";

const EC_KEY = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"];

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function ca(dir: string, name: string, subject: string): void {
  openssl(dir, [...EC_KEY, `${name}.key`]);
  openssl(dir, [
    "req",
    "-x509",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    subject,
    "-days",
    "2",
    "-out",
    `${name}.crt`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

function issue(dir: string, signer: string, name: string, subject: string, usage: "serverAuth" | "clientAuth", sans: string[] = []): void {
  openssl(dir, [...EC_KEY, `${name}.key`]);
  openssl(dir, ["req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`]);
  const ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", `extendedKeyUsage=${usage}`];
  if (sans.length > 0) ext.push(`subjectAltName=${sans.join(",")}`);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext.join("\n") + "\n");
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${signer}.crt`,
    "-CAkey",
    `${signer}.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ]);
  fs.rmSync(path.join(dir, `${name}.csr`));
  fs.rmSync(path.join(dir, `${name}.ext`));
}

const subjectAltNames = (names: readonly string[]) => names.map((name) => (/^[\d.]+$/.test(name) ? `IP:${name}` : `DNS:${name}`));

/** The kubeconfigs the node's processes and the tests use, by file name under pki/. */
export const KUBECONFIG_USERS = {
  admin: { subject: "/O=system:masters/CN=admin" },
  "controller-manager": { subject: "/CN=system:kube-controller-manager" },
  scheduler: { subject: "/CN=system:kube-scheduler" },
} as const;

/** Mints everything into `dir` (the node's <data-dir>/pki as seen from the machine). */
export function mintPki(dir: string, settings: Effective, nodeName: string, clusterDomain: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  ca(dir, "ca", "/CN=kubernetes-ca");
  ca(dir, "front-proxy-ca", "/CN=front-proxy-ca");
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
  openssl(dir, [...EC_KEY, "sa.key"]);
  openssl(dir, ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

/** A kubeconfig for `user` (a certificate pair under `dir`), whose context is named `context`. */
export function kubeconfigFor(dir: string, user: string, server: string, context = "Default"): string {
  const pem = (file: string) => fs.readFileSync(path.join(dir, file), "utf8");
  return renderKubeconfig({ server, context, user, ca: pem("ca.crt"), cert: pem(`${user}.crt`), key: pem(`${user}.key`) });
}

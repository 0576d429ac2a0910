// Per-run certificates and kubeconfigs for the throwaway control plane, minted with the openssl
// CLI: a CA, the apiserver's serving certificate for 127.0.0.1, client certificates for the admin
// and the controller-manager, and the service-account signing key pair.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderKubeconfig } from "../harness/kubeClient";
// Arguments are split on spaces: every name and subject used here has none.
function openssl(dir: string, args: string): void {
  execFileSync("openssl", args.split(" "), { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

const EC_KEY = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out";

// An EC P-256 key and a certificate signed by the run's CA.
function issue(dir: string, name: string, subject: string, ext: string): void {
  openssl(dir, `${EC_KEY} ${name}.key`);
  openssl(dir, `req -new -key ${name}.key -subj ${subject} -out ${name}.csr`);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, `x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ${name}.ext -out ${name}.crt`);
}

export function makeCerts(dir: string): void {
  openssl(dir, `${EC_KEY} ca.key`);
  openssl(dir, "req -x509 -new -key ca.key -subj /CN=e2e-ca -days 2 -out ca.crt -addext basicConstraints=critical,CA:TRUE");
  const leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n";
  // 10.96.0.1 is the in-cluster service IP of the apiserver; it is only a name in the cert.
  const sans = "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1";
  issue(dir, "apiserver", "/CN=kube-apiserver", `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`);
  issue(dir, "admin", "/O=system:masters/CN=e2e-admin", `${leaf}extendedKeyUsage=clientAuth\n`);
  // With --use-service-account-credentials=false every controller acts as this
  // identity, so it needs to be able to do anything (namespace deletion included).
  issue(dir, "controller-manager", "/O=system:masters/CN=system:kube-controller-manager", `${leaf}extendedKeyUsage=clientAuth\n`);
  openssl(dir, `${EC_KEY} sa.key`);
  openssl(dir, "pkey -in sa.key -pubout -out sa.pub");
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

/**
 * Per-run certificates for the rungs' clusters, minted with Debian's openssl CLI: EC P-256 keys, a
 * CA, leaves signed by it for a server or a client, and the service-account signing key pair.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const EC_KEY = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"];

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A self-signed CA, `<name>.key` and `<name>.crt` under `dir`. */
export function certificateAuthority(dir: string, name: string, subject: string): void {
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

/** An EC P-256 key and a certificate signed by `signer`, for a server or a client, with `sans`. */
export function issue(
  dir: string,
  signer: string,
  name: string,
  subject: string,
  usage: "serverAuth" | "clientAuth",
  sans: string[] = [],
): void {
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

/** `subjectAltName` entries for addresses and host names. */
export const subjectAltNames = (names: readonly string[]) => names.map((name) => (/^[\d.]+$/.test(name) ? `IP:${name}` : `DNS:${name}`));

/** The service-account signing key pair, `sa.key` and `sa.pub`. */
export function serviceAccountKeys(dir: string): void {
  openssl(dir, [...EC_KEY, "sa.key"]);
  openssl(dir, ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

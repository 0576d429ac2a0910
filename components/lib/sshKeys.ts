/**
 * SSH key pairs the program generates itself (a droplet's host key, Flux's deploy key), and what it
 * can tell of a user's private key before dialling with it. Pure.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";

/** An SSH host key pair: the OpenSSH public key line, and the private key in OpenSSH's format. */
export interface SshKeyPair {
  readonly publicKey: string;
  readonly privateKey: string;
}

/** A new ed25519 key pair in OpenSSH's formats (what `ssh-keygen -t ed25519` writes), with no extra tool or plugin. */
export function generateSshKeyPair(comment: string): SshKeyPair {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d!, "base64url");
  const publicKey = Buffer.from(jwk.x!, "base64url");
  const string = (value: Buffer | string) => {
    const bytes = Buffer.from(value);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const publicBlob = Buffer.concat([string("ssh-ed25519"), string(publicKey)]);
  // openssh-key-v1, unencrypted (PROTOCOL.key in OpenSSH's sources): a check number twice, the key,
  // its comment, then padding 1, 2, 3… to the cipher block size (8 for "none").
  const check = randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    string("ssh-ed25519"),
    string(publicKey),
    string(Buffer.concat([seed, publicKey])),
    string(comment),
  ]);
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, index) => index + 1));
  secret = Buffer.concat([secret, padding]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    string("none"),
    string("none"),
    string(""),
    count,
    string(publicBlob),
    string(secret),
  ]).toString("base64");
  const lines = body.match(/.{1,70}/g)!;
  return {
    publicKey: `ssh-ed25519 ${publicBlob.toString("base64")}`,
    privateKey: ["-----BEGIN OPENSSH PRIVATE KEY-----", ...lines, "-----END OPENSSH PRIVATE KEY-----", ""].join("\n"),
  };
}

/**
 * Whether a private key (PEM or OpenSSH format) is protected by a passphrase. The command provider
 * has no way to ask for one, so such a key would pass every check and fail only at the first dial,
 * after the droplet exists. OpenSSH's format names its cipher right after the magic string ("none"
 * when there is no passphrase: PROTOCOL.key); PEM marks it with a Proc-Type header, PKCS#8 in its
 * label. A blob too short to name a cipher is left to the dial to judge.
 */
export function isPassphraseProtected(privateKey: string): boolean {
  const text = privateKey.trim();
  if (/^-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text) || /^Proc-Type:\s*4,ENCRYPTED/m.test(text)) return true;
  const body = /^-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text)?.[1];
  if (body === undefined) return false;
  const blob = Buffer.from(body.replace(/\s+/g, ""), "base64");
  const magic = Buffer.from("openssh-key-v1\0");
  if (blob.length < magic.length + 4 || !blob.subarray(0, magic.length).equals(magic)) return false;
  const length = blob.readUInt32BE(magic.length);
  const start = magic.length + 4;
  if (blob.length < start + length) return false;
  return blob.subarray(start, start + length).toString("latin1") !== "none";
}

/**
 * SSH key pairs the program generates itself: a droplet's host key, Flux's deploy key. Pure.
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

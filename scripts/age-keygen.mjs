// Prints a new age X25519 identity (AGE-SECRET-KEY-1...). Run by the SopsAgeKey component's
// local Command, whose state keeps the key as a secret; X25519 rather than age-encryption's
// post-quantum default because SOPS only reads X25519 identities.
import { generateX25519Identity } from "age-encryption";

process.stdout.write(await generateX25519Identity());

/** The gateway's secrets in its data dir: the operator token and the key it signs packages with. */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type Ed25519KeyPair, keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { secretFile } from "../node/storage/data-dir.ts";

export { secretFile };

export function operatorTokenOf(dataDir: string): string {
  return secretFile(join(dataDir, "operator-token"), () => `${randomBytes(32).toString("hex")}\n`);
}

export function gatewayKeyOf(dataDir: string): Ed25519KeyPair {
  return keyPairFromSeed(Buffer.from(secretFile(join(dataDir, "gateway-key"), () => `${randomBytes(32).toString("hex")}\n`), "hex"));
}

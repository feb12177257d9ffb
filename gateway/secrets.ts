/** The gateway's secrets in its data dir: the operator token and the key it signs packages with. */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Ed25519KeyPair, keyPairFromSeed } from "../node/crypto/ed25519.ts";

/** A secret file in the data dir, made once (mode 0600) and read after. */
export function secretFile(path: string, make: () => string): string {
  if (!existsSync(path)) {
    writeFileSync(path, make(), { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600);
  }
  return readFileSync(path, "utf8").trim();
}

export function operatorTokenOf(dataDir: string): string {
  return secretFile(join(dataDir, "operator-token"), () => `${randomBytes(32).toString("hex")}\n`);
}

export function gatewayKeyOf(dataDir: string): Ed25519KeyPair {
  return keyPairFromSeed(Buffer.from(secretFile(join(dataDir, "gateway-key"), () => `${randomBytes(32).toString("hex")}\n`), "hex"));
}

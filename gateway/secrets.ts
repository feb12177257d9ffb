/** The gateway's secrets in its data dir: the operator token and the key it signs packages with. */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Ed25519KeyPair, keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { secretFile } from "../node/storage/data-dir.ts";

export { secretFile };

/** The operator token file of a data dir. */
export const OPERATOR_TOKEN_FILE = "operator-token";

/**
 * A running gateway's operator token as a client command reads it (never made here): the token,
 * or the file's path and why it could not be read (its errno code, or "empty").
 */
export function readOperatorToken(dataDir: string): { readonly token: string } | { readonly path: string; readonly why: string } {
  const path = join(dataDir, OPERATOR_TOKEN_FILE);
  try {
    const token = readFileSync(path, "utf8").trim();
    return token === "" ? { path, why: "empty" } : { token };
  } catch (e) {
    return { path, why: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

export function operatorTokenOf(dataDir: string): string {
  return secretFile(join(dataDir, OPERATOR_TOKEN_FILE), () => `${randomBytes(32).toString("hex")}\n`);
}

export function gatewayKeyOf(dataDir: string): Ed25519KeyPair {
  return keyPairFromSeed(
    Buffer.from(
      secretFile(join(dataDir, "gateway-key"), () => `${randomBytes(32).toString("hex")}\n`),
      "hex",
    ),
  );
}

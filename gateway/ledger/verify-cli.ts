/**
 * `jamgate verify proof.json [--root HEX] [--json]`: checks a jamgate-proof/1 document offline
 * (proof.ts), trusting nothing the server said. Exit 0 and the anchor (the last header's hash and
 * slot) and the claim when every check passes; otherwise exit 1 with the failed check's code
 * (`jamgate: JG_ERR_PROOF_…: detail` on stderr, through scripts/cli.ts). `-` reads the proof from
 * standard input (`curl …/v1/proofs/… | jamgate verify -`).
 */
import { readFileSync, statSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { JamgateError } from "../../devices/protocol/errors.ts";
import type { ProofClaim, VerifiedProof } from "./proof.ts";

/** commander parser for --root: 32 octets as 64 hex digits (a leading 0x allowed). */
function rootHash(value: string): Uint8Array {
  const hex = value.trim().toLowerCase().replace(/^0x/, "");
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new InvalidArgumentError(`JG_ERR_CLI_ARGUMENT: expected a state root or header hash of 64 hex digits, got "${value}"`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** The proof file's bytes, at most PROOF_JSON_BYTES_MAX (checked before reading a file, and while reading standard input). */
async function readProof(path: string, PROOF_JSON_BYTES_MAX: number): Promise<Buffer> {
  const tooBig = (bytes: number) =>
    new JamgateError(
      "JG_ERR_PROOF_FORMAT",
      `${path === "-" ? "standard input" : path} holds ${bytes} bytes or more, more than a proof may (PROOF_JSON_BYTES_MAX = ${PROOF_JSON_BYTES_MAX})`,
    );
  if (path === "-") {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > PROOF_JSON_BYTES_MAX) throw tooBig(bytes);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new JamgateError("JG_ERR_CLI_ARGUMENT", `cannot read the proof file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (size > PROOF_JSON_BYTES_MAX) throw tooBig(size);
  return readFileSync(path);
}

/** The claim in words, amounts with their unit. */
export function describeClaim(claim: ProofClaim): string {
  switch (claim.kind) {
    case "energy-entry": {
      const e = claim.entry;
      return `${claim.service} interval ${claim.interval}, ledger entry ${claim.index}: ${e.reason}, ${e.buyer} paid ${e.seller} ${e.amountMicros} micro-units for ${e.energyWh} Wh at ${e.priceMicrosPerKwh} micro-units/kWh`;
    }
    case "wifi-entry": {
      const e = claim.entry;
      const usage = `${e.inputOctets} + ${e.outputOctets} octets at ${e.priceMicrosPerGb} micro-units/GB${e.session === null ? "" : ` in session ${e.session}`}${e.router === null ? "" : ` of router ${e.router}`}${e.attested ? " (router-attested)" : ""}`;
      return `${claim.service} slot ${claim.slot}, ledger entry ${claim.index}: ${e.reason}, account ${e.client}, ${e.amountMicros} micro-units (fee ${e.feeMicros}), ${usage}`;
    }
    case "balance":
      return `${claim.service} account ${claim.account} has a balance of ${claim.balanceMicros} micro-units${claim.lockedMicros === undefined ? "" : `, ${claim.lockedMicros} locked`}`;
    case "settled-seq":
      return `${claim.service} settled seq ${claim.seq} of device ${claim.device}`;
    case "reading":
      return `device ${claim.device} signed envelope seq ${claim.seq}, carried to ${claim.service} in a package a block guaranteed`;
  }
}

function printVerified(result: VerifiedProof, root: Uint8Array | undefined): void {
  const lines = [`verified: ${describeClaim(result.claim)}`];
  if (result.reading !== undefined)
    lines.push(`reading: kind ${result.reading.kind}, time ${result.reading.timeMs} ms, body ${result.reading.body.length / 2} bytes`);
  lines.push(`anchor: block ${result.anchor.hash} at slot ${result.anchor.slot}`);
  lines.push(
    root === undefined
      ? "trust it when that block is on the chain you trust, or check it against a hash you trust with --root"
      : `anchored to the trusted root ${Buffer.from(root).toString("hex")}`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description(
      "check a ledger proof offline (jamgate-proof/1, from the HTTP API's /v1/proofs routes): exit 0 and the anchor block when it holds, 1 and a JG_ERR_PROOF_* code when not",
    )
    .argument("<proof>", "the proof's JSON file, or - for standard input")
    .option("--root <hex>", "a state root or block header hash you trust: the proof must lead to it (JG_ERR_PROOF_ANCHOR otherwise)", rootHash)
    .option("--json", "print the result as one JSON object")
    .action(async (path: string, options: { root?: Uint8Array; json?: boolean }) => {
      // Loaded when the command runs, not for every jamgate command: the verifier brings typeberry, ajv and the services' codecs.
      const { PROOF_JSON_BYTES_MAX, verifyProof } = await import("./proof.ts");
      const text = await readProof(path, PROOF_JSON_BYTES_MAX);
      let document: unknown;
      try {
        document = JSON.parse(text.toString("utf8"));
      } catch (e) {
        throw report(options.json, new JamgateError("JG_ERR_PROOF_FORMAT", `${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`));
      }
      const result = verifyProof(document, options.root === undefined ? {} : { root: options.root });
      if (!result.ok) throw report(options.json, new JamgateError(result.error.code, result.error.detail));
      if (options.json)
        process.stdout.write(`${JSON.stringify(options.root === undefined ? result : { ...result, root: Buffer.from(options.root).toString("hex") })}\n`);
      else printVerified(result, options.root);
    });
}

/** With --json, the failure is also printed as JSON on standard output; the coded error goes on to scripts/cli.ts (stderr, exit 1). */
function report(json: boolean | undefined, error: JamgateError): JamgateError {
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: { code: error.code, detail: error.detail } })}\n`);
  return error;
}

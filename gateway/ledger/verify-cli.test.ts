/**
 * `jamgate verify` as a user runs it, a real process: a balance proof over a real state and a
 * sealed header verifies (exit 0, the anchor printed); tampered, with a root it does not lead to,
 * or not a proof at all, it exits 1 with the code on stderr; a bad command line (a missing file, a
 * bad --root) exits 2, as every jamgate command does (scripts/cli.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { headerHash, makeExtrinsic, sealBlock } from "../../node/chain/block.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { encode, Header, toHex } from "../../node/codec/jam.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { StateComponents, storageKey } from "../../node/state/components.ts";
import { State } from "../../node/state/kv.ts";
import { JAMGATE_BIN, runCommand } from "../../scripts/testing/process.ts";
import { balanceKey, encodeBalance } from "../../services/energy-trading/storage.ts";
import { type Proof, PROOF_FORMAT } from "./proof.ts";
import { describeClaim } from "./verify-cli.ts";

const params = tinyParams;
const ENERGY_ID = 3;
const account = hash(Uint8Array.of(1)).subarray(0, 16);
const dir = mkdtempSync(join(tmpdir(), "jamgate-verify-"));

const state = new State();
const s = new StateComponents(state, params);
s.createService(ENERGY_ID, nativeCodeHash("energy-trading"), 1_000n, 0);
for (let i = 0; i < 50; i++) s.storageSet(ENERGY_ID, hash(Uint8Array.of(i)), Uint8Array.of(i));
s.storageSet(ENERGY_ID, balanceKey(account), encodeBalance(-42_000_000n));
const root = state.root();
const author = keyPairFromSeed(new Uint8Array(32).fill(3));
const stateBlockHash = hash(Uint8Array.of(9));
const child = sealBlock(params, { parentHash: stateBlockHash, priorStateRoot: root, slot: 6, authorIndex: 0 }, makeExtrinsic([], []), author).header;
const anchor = toHex(headerHash(params, child));
const stateKey = storageKey(ENERGY_ID, balanceKey(account));
const path = state.proof(stateKey)!;
const proof: Proof = {
  format: PROOF_FORMAT,
  chain: "tiny",
  claim: { kind: "balance", service: "energy-trading", account: toHex(account), balanceMicros: "-42000000" },
  state: {
    serviceId: ENERGY_ID,
    storageKey: toHex(balanceKey(account)),
    stateKey,
    value: toHex(path.value),
    root: toHex(root),
    siblings: path.siblings.map(toHex),
    block: { hash: toHex(stateBlockHash), slot: 5 },
  },
  headers: [toHex(encode<Header>(Header.Codec, child, params.spec))],
};

function file(name: string, content: unknown): string {
  const at = join(dir, name);
  writeFileSync(at, typeof content === "string" ? content : JSON.stringify(content));
  return at;
}

/** `jamgate …` through a shell, so standard input can be redirected; resolves with its exit code and output. */
async function jamgate(args: string, stdin?: string): Promise<{ code: number | null; output: string }> {
  const run = runCommand("sh", ["-c", `exec "${process.execPath}" "${JAMGATE_BIN}" ${args}${stdin === undefined ? "" : ` < "${stdin}"`}`]);
  const { code } = await run.exited;
  return { code, output: run.output() };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("jamgate verify", () => {
  it("exits 0 and prints the claim and the anchor for a proof that holds", async () => {
    const good = file("good.json", proof);
    const text = await jamgate(`verify ${good}`);
    expect(text.code, text.output).toBe(0);
    expect(text.output).toContain(`verified: energy-trading account ${toHex(account)} has a balance of -42000000 micro-units`);
    expect(text.output).toContain(`anchor: block ${anchor} at slot 6`);
    const json = await jamgate(`verify ${good} --json --root ${toHex(root)}`);
    expect(json.code, json.output).toBe(0);
    expect(JSON.parse(json.output)).toEqual({ ok: true, anchor: { hash: anchor, slot: 6 }, claim: proof.claim, root: toHex(root) });
    const piped = await jamgate(`verify - --root 0x${anchor}`, good);
    expect(piped.code, piped.output).toBe(0);
    expect(piped.output).toContain(`anchored to the trusted root ${anchor}`);
  }, 120_000);

  it("tells a Wi-Fi entry and a Wi-Fi balance in words, amounts with their unit", () => {
    const entry = {
      reason: "usage",
      session: "51".repeat(16),
      router: "a0".repeat(16),
      client: "c0".repeat(16),
      inputOctets: "1000",
      outputOctets: "2000",
      priceMicrosPerGb: "500000",
      amountMicros: "1500",
      feeMicros: "75",
      attested: true,
    } as const;
    expect(describeClaim({ kind: "wifi-entry", service: "wifi-billing", slot: 9, index: 1, entry })).toBe(
      `wifi-billing slot 9, ledger entry 1: usage, account ${"c0".repeat(16)}, 1500 micro-units (fee 75), 1000 + 2000 octets at 500000 micro-units/GB in session ${"51".repeat(16)} of router ${"a0".repeat(16)} (router-attested)`,
    );
    expect(describeClaim({ kind: "balance", service: "wifi-billing", account: "c0".repeat(16), balanceMicros: "42", lockedMicros: "7" })).toBe(
      `wifi-billing account ${"c0".repeat(16)} has a balance of 42 micro-units, 7 locked`,
    );
  });

  it("exits 1 with the failed check's code (a tampered value, a root not in the proof, not a proof), 2 on a bad command line (a missing file, a bad --root)", async () => {
    const tampered = JSON.parse(JSON.stringify(proof));
    tampered.state.value = tampered.state.value.slice(0, -2) + (tampered.state.value.endsWith("00") ? "01" : "00");
    const cases: [string, string][] = [
      [`verify ${file("tampered.json", tampered)}`, "JG_ERR_PROOF_STATE"],
      [`verify ${file("good.json", proof)} --root ${toHex(stateBlockHash)}`, "JG_ERR_PROOF_ANCHOR"],
      [`verify ${file("garbage.json", "{ not json")}`, "JG_ERR_PROOF_FORMAT"],
      [`verify ${file("other.json", { format: "jamgate-proof/9" })} --json`, "JG_ERR_PROOF_FORMAT"],
      [`verify ${join(dir, "missing.json")}`, "JG_ERR_CLI_ARGUMENT"],
      [`verify ${file("good.json", proof)} --root abc`, "JG_ERR_CLI_ARGUMENT"],
    ];
    for (const [args, code] of cases) {
      const run = await jamgate(args);
      expect(run.code, `${args}: ${run.output}`).toBe(code === "JG_ERR_CLI_ARGUMENT" ? 2 : 1);
      expect(run.output, args).toMatch(new RegExp(`jamgate: .*${code}|${code}: `));
    }
    const json = await jamgate(`verify ${file("tampered.json", tampered)} --json`);
    expect(JSON.parse(json.output.split("\n")[0]!)).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_STATE" } });
  }, 180_000);
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../common/bytes.ts";
import type { RawDeviceId } from "../common/envelope.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import {
  accountKey,
  decodeAccount,
  decodeActionVerdict,
  decodeConfig,
  decodeDevice,
  decodeLedgerEntries,
  decodeRouter,
  decodeSession,
  decodeStats,
  decodeStoredAction,
  DEFAULT_CONFIG,
  EMPTY_STATS,
  encodeAccount,
  encodeConfig,
  encodeDeviceRecord,
  encodeLedgerEntries,
  encodeRouter,
  encodeSession,
  encodeStats,
  encodeStoredAction,
  LEDGER_ENTRY_BYTES,
  ledgerKey,
  REFUSAL_CODE_SLOTS,
  type RouterRecord,
  routerKey,
  SESSION_RECORD_BYTES,
  sessionKey,
} from "./storage.ts";

const id = (n: number) => new Uint8Array(16).fill(n) as RawDeviceId;
const router: RouterRecord = {
  owner: id(1),
  priceMicrosPerGb: 500_000n,
  stakeMicros: 10n,
  capacityBitsPerSecond: 1_000_000_000n,
  attested: true,
  status: "deregistered",
  registeredSlot: 2,
  deregisteredSlot: 3,
  openSessions: 4,
  sessionsStarted: 5n,
  billedOctets: 6n,
  billedMicros: 7n,
  earnedMicros: 8n,
  disputedOctets: 9n,
  name: "café",
};

describe("storage layouts", () => {
  it("keys are the ASCII prefix then the ids (slots little-endian)", () => {
    expect(toHex(routerKey(id(0xab)))).toBe(toHex(new TextEncoder().encode("router/")) + "ab".repeat(16));
    expect(toHex(accountKey(toHex(id(1))))).toBe(toHex(new TextEncoder().encode("account/")) + "01".repeat(16));
    expect(toHex(sessionKey(id(1), id(2)))).toBe(toHex(new TextEncoder().encode("session/")) + "01".repeat(16) + "02".repeat(16));
    expect(toHex(ledgerKey(0x0102))).toBe(`${toHex(new TextEncoder().encode("ledger/"))}02010000`);
  });

  it("a router record is its documented bytes, and decodes back", () => {
    const bytes = encodeRouter(router);
    expect(toHex(bytes)).toBe(
      "01" +
        "01".repeat(16) +
        "20a1070000000000" +
        "0a00000000000000" +
        "00ca9a3b00000000" +
        "01" +
        "01" +
        "02000000" +
        "03000000" +
        "04000000" +
        ["05", "06", "07", "08", "09"].map((b) => `${b}00000000000000`).join("") +
        "05" +
        toHex(new TextEncoder().encode("café")),
    );
    expect(decodeRouter(bytes)).toEqual({ ok: true, value: router });
  });

  it("a ledger entry is 90 bytes: reason, session, router, client, five u64, attested", () => {
    const entry = {
      reason: "balance-exhausted" as const,
      session: id(7),
      router: id(8),
      client: id(9),
      inputOctets: 1n,
      outputOctets: 2n,
      priceMicrosPerGb: 3n,
      amountMicros: 4n,
      feeMicros: 5n,
      attested: true,
    };
    const bytes = encodeLedgerEntries([entry, { ...entry, reason: "topup", attested: false }]);
    expect(LEDGER_ENTRY_BYTES).toBe(90);
    expect(bytes.length).toBe(1 + 4 + 2 * 90);
    expect(toHex(bytes.subarray(0, 6))).toBe("010200000001");
    expect(decodeLedgerEntries(bytes)).toEqual({ ok: true, value: [entry, { ...entry, reason: "topup", attested: false }] });
  });

  it("round-trips sessions, accounts, config, stats, actions and device records", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.nat({ max: 2 ** 32 - 1 }), fc.boolean(), fc.boolean(), (big, small, stopped, exhausted) => {
        const session = {
          client: id(3),
          priceMicrosPerGb: big,
          lastVoucherHash: new Uint8Array(32).fill(4),
          inputOctets: big,
          outputOctets: 1n,
          seconds: small,
          billedMicros: big,
          stopped,
          exhausted,
          terminateCause: small,
          startSlot: small,
          lastSlot: 0,
        };
        const sessionBytes = encodeSession(session);
        expect(sessionBytes.length).toBe(SESSION_RECORD_BYTES);
        expect(decodeSession(sessionBytes)).toEqual({ ok: true, value: session });
        expect(decodeAccount(encodeAccount({ balanceMicros: big, lockedMicros: 0n, registeredSlot: small }))).toEqual({
          ok: true,
          value: { balanceMicros: big, lockedMicros: 0n, registeredSlot: small },
        });
        const stats = { ...EMPTY_STATS, billedMicros: big, refusalsByCode: EMPTY_STATS.refusalsByCode.map((_, i) => BigInt(i) * 3n) };
        expect(decodeStats(encodeStats(stats))).toEqual({ ok: true, value: stats });
        const action = { action: { actionId: id(5), type: 0 as const, target: id(6), value: big }, slot: small, code: REJECTION_CODES.JG_ERR_WIFI_AMOUNT };
        expect(decodeStoredAction(encodeStoredAction(action))).toEqual({ ok: true, value: action });
      }),
    );
    expect(decodeConfig(encodeConfig(DEFAULT_CONFIG))).toEqual({ ok: true, value: DEFAULT_CONFIG });
    expect(() => encodeConfig({ protocolFeePpm: 1_000_001, stakeCooldownSlots: 1 })).toThrow(/ppm/);
    expect(REFUSAL_CODE_SLOTS).toBeGreaterThan(Math.max(...Object.values(REJECTION_CODES)));
  });

  it("reads a device record as the gateway's registry wants it, and an action's verdict", () => {
    const record = {
      publicKey: new Uint8Array(32).fill(1),
      kind: 1 as const,
      registeredSlot: 3,
      window: { highestSeq: 41n, bitmap: 1n },
      envelopesSettled: 2n,
    };
    expect(decodeDevice(encodeDeviceRecord(record))).toEqual({ publicKey: record.publicKey, kind: "router", settledHighestSeq: 41 });
    expect(decodeDevice(encodeDeviceRecord({ ...record, kind: 0, window: { highestSeq: null, bitmap: 0n } }))).toMatchObject({
      kind: "client",
      settledHighestSeq: -1,
    });
    const action = { actionId: id(5), type: 2 as const, target: id(6), value: 0n };
    expect(decodeActionVerdict(encodeStoredAction({ action, slot: 9, code: 0 }))).toEqual({ status: "applied", code: null, slot: 9 });
    expect(decodeActionVerdict(encodeStoredAction({ action, slot: 9, code: REJECTION_CODES.JG_ERR_WIFI_ROUTER }))).toEqual({
      status: "refused",
      code: "JG_ERR_WIFI_ROUTER",
      slot: 9,
    });
  });

  it("decoders never throw on garbage", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decode of [decodeRouter, decodeAccount, decodeSession, decodeLedgerEntries, decodeStats, decodeConfig, decodeStoredAction])
          expect(typeof decode(bytes).ok).toBe("boolean");
        decodeDevice(bytes);
        decodeActionVerdict(bytes);
      }),
      { numRuns: 2_000 },
    );
  });
});

import { describe, expect, it } from "vitest";
import { signingBytes } from "../../devices/envelope.ts";
import { encodeUsageBody } from "../../devices/wifi.ts";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { toHex } from "../common/bytes.ts";
import { parseSigningBytes, W_R } from "../common/envelope.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import { memoryRefineContext } from "../common/testing.ts";
import { decodeRefineOutput, ENVELOPES_OUTPUT_HEADER_BYTES, type EnvelopesOutput, ROUTER_HEADER_BYTES, SESSION_DELTA_BYTES_MAX } from "./output.ts";
import { ENVELOPE_DEVICES_PER_ITEM_MAX, ENVELOPES_PER_ITEM_MAX } from "./payload.ts";
import { refine, refineEnvelopes } from "./refine.ts";
import { realSides, WifiWorld } from "./testing.ts";
import { FIRST_PREV, voucherSigningBytes } from "./voucher.ts";

const { crypto, deviceSide } = realSides({ hash, verifyEd25519, keyPairFromSeed, signEd25519, signingBytes, encodeUsageBody });

function refined(world: WifiWorld, ...records: Parameters<WifiWorld["envelopes"]>): EnvelopesOutput {
  return refineEnvelopes(world.envelopes(...records), memoryRefineContext(crypto));
}

/** The codes of the router's refused seqs, by seq. */
function refusals(output: EnvelopesOutput): Record<number, string> {
  const names = Object.fromEntries(Object.entries(REJECTION_CODES).map(([name, code]) => [code, name]));
  return Object.fromEntries(output.routers.flatMap((r) => r.rejected.map((x) => [Number(x.seq), names[x.code]!])));
}

function setup() {
  const world = new WifiWorld(crypto, deviceSide);
  const router = world.party("router");
  const client = world.party("client");
  return { world, router, client, session: world.session(router, client) };
}

const GB = 1_000_000_000n;

describe("refine condenses a session into one delta", () => {
  it("Start, interims and Stop: one delta with the chain's ends, the last counters and every seq; 24× fewer bytes", () => {
    const { world, router, session } = setup();
    const records = [];
    for (let k = 0; k <= 10; k++)
      records.push(
        session.update({
          inputOctets: BigInt(k) * GB,
          outputOctets: BigInt(k) * 1000n,
          seconds: 60 * k,
          ...(k === 10 ? { status: 2 as const, cause: 1 } : {}),
        }),
      );
    const payload = world.envelopes(...records);
    const bytes = refine(payload, memoryRefineContext(crypto));
    expect(bytes.length).toBe(ENVELOPES_OUTPUT_HEADER_BYTES + ROUTER_HEADER_BYTES + SESSION_DELTA_BYTES_MAX);
    expect(payload.length).toBeGreaterThan(24 * bytes.length); // measured: 5,207 bytes in, 210 out (24×)
    const output = decodeRefineOutput(bytes);
    expect(output.ok).toBe(true);
    const out = (output as { value: EnvelopesOutput }).value;
    expect(out.routers.length).toBe(1);
    expect(toHex(out.routers[0]!.router)).toBe(router.hex);
    expect(out.routers[0]!.rejected).toEqual([]);
    const [delta] = out.routers[0]!.sessions;
    expect(delta).toMatchObject({
      first: { inputOctets: 0n, outputOctets: 0n, seconds: 0 },
      inputOctets: 10n * GB,
      outputOctets: 10_000n,
      seconds: 600,
      started: true,
      stopped: true,
      attested: false,
      cause: 1,
      seqs: [{ start: 0n, length: 11 }],
    });
    expect(toHex(delta!.firstPrev)).toBe(toHex(FIRST_PREV));
    expect(toHex(delta!.lastHash)).toBe(toHex(records[10]!.hash));
    expect(toHex(delta!.client)).toBe(toHex(session.client.id));
  });

  it("keeps sessions apart, in order of first appearance, and marks router-attested usage", () => {
    const { world, router, client, session } = setup();
    const other = world.session(router, client);
    const out = refined(
      world,
      session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }),
      other.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" }),
      session.update({ inputOctets: 5n, outputOctets: 5n, seconds: 1 }),
      other.update({ inputOctets: 7n, outputOctets: 7n, seconds: 1, voucher: "none" }),
    );
    const deltas = out.routers[0]!.sessions;
    expect(deltas.map((d) => toHex(d.session))).toEqual([toHex(session.id), toHex(other.id)]);
    expect(deltas.map((d) => [d.inputOctets, d.attested, d.seqs])).toEqual([
      [
        5n,
        false,
        [
          { start: 0n, length: 1 },
          { start: 2n, length: 1 },
        ],
      ],
      [
        7n,
        true,
        [
          { start: 1n, length: 1 },
          { start: 3n, length: 1 },
        ],
      ],
    ]);
  });

  it("a router-attested update after a client-signed one starts a delta of its own; the other way round they stay one", () => {
    const { world, session } = setup();
    const records = [
      session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" }),
      session.update({ inputOctets: 10n, outputOctets: 0n, seconds: 1 }),
      session.update({ inputOctets: 20n, outputOctets: 0n, seconds: 2, voucher: "none" }),
      session.update({ inputOctets: 30n, outputOctets: 0n, seconds: 3, voucher: "none" }),
    ];
    const deltas = refined(world, ...records).routers[0]!.sessions;
    expect(deltas.map((d) => [d.first.inputOctets, d.inputOctets, d.attested, d.started, d.seqs])).toEqual([
      [0n, 10n, false, true, [{ start: 0n, length: 2 }]],
      [20n, 30n, true, false, [{ start: 2n, length: 2 }]],
    ]);
    expect(toHex(deltas[1]!.firstPrev)).toBe(toHex(records[1]!.hash));
  });

  it("an update of a later package is a delta starting from its prev", () => {
    const { world, session } = setup();
    session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const first = session.update({ inputOctets: 10n, outputOctets: 0n, seconds: 1 });
    const later = session.update({ inputOctets: 20n, outputOctets: 0n, seconds: 2 });
    const [delta] = refined(world, later).routers[0]!.sessions;
    expect(toHex(delta!.firstPrev)).toBe(toHex(first.hash));
    expect(delta!.started).toBe(false);
  });
});

describe("refine commits to what it accepted", () => {
  it("commitment = H(⌢ of router 16 ⌢ u64 seq ⌢ H(body) for each accepted envelope, refused ones left out)", () => {
    const { world, router, session } = setup();
    const start = session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const bad = session.update({ inputOctets: 1n, outputOctets: 0n, seconds: 1, voucher: "forged" });
    session.lastHash = start.hash;
    const good = session.update({ inputOctets: 2n, outputOctets: 0n, seconds: 2 });
    const out = refined(world, start, bad, good);
    expect(refusals(out)).toEqual({ 1: "JG_ERR_WIFI_VOUCHER_SIGNATURE" });
    const leaf = (record: typeof start) => {
      const parsed = parseSigningBytes(record.signingBytes);
      if (!parsed.ok) throw new Error(parsed.error);
      const seq = new Uint8Array(8);
      new DataView(seq.buffer).setBigUint64(0, BigInt(record.seq), true);
      return [...router.id, ...seq, ...hash(parsed.value.body)];
    };
    expect(toHex(out.commitment)).toBe(toHex(hash(Uint8Array.from([...leaf(start), ...leaf(good)]))));
  });
});

describe("refine refuses, with the registry's code", () => {
  it("an envelope the router did not sign, or whose key is not its device id", () => {
    const { world, router, session } = setup();
    const good = session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const forged = { ...good, signature: Uint8Array.from(good.signature, (b, i) => (i === 0 ? b ^ 1 : b)) };
    expect(refusals(refined(world, forged))).toEqual({ 0: "JG_ERR_ENVELOPE_SIGNATURE" });
    const otherKey = { ...good, publicKey: world.party("someone else").key.publicKey };
    expect(refusals(refined(world, otherKey))).toEqual({ 0: "JG_ERR_ENVELOPE_DEVICE" });
    void router;
  });

  it("a voucher signature that does not verify (altered, or by another key)", () => {
    const { world, session } = setup();
    const out = refined(world, session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "forged" }));
    expect(refusals(out)).toEqual({ 0: "JG_ERR_WIFI_VOUCHER_SIGNATURE" });
    const { world: w2, session: s2 } = setup();
    expect(refusals(refined(w2, s2.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "wrong-key" })))).toEqual({
      0: "JG_ERR_WIFI_VOUCHER_SIGNATURE",
    });
  });

  it("a voucher key that is not the named client's, though its signature verifies", () => {
    const { world, router, client } = setup();
    const stranger = world.party("stranger");
    const session = new Uint8Array(16).fill(3);
    const fields = { router: router.id, session, inputOctets: 0n, outputOctets: 0n, seconds: 0, prev: FIRST_PREV };
    const body = encodeUsageBody({
      session,
      client: client.id,
      status: 1,
      inOctets: 0,
      outOctets: 0,
      inGigawords: 0,
      outGigawords: 0,
      seconds: 0,
      cause: 0,
      prev: FIRST_PREV,
      voucher: stranger.key.sign(voucherSigningBytes(fields)),
      clientKey: stranger.key.publicKey,
    });
    expect(refusals(refined(world, world.envelope(router, "router.usage", body)))).toEqual({ 0: "JG_ERR_WIFI_CLIENT" });
  });

  it("a broken chain, and every update chained to the refused one", () => {
    const { world, session } = setup();
    const start = session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const broken = session.update({ inputOctets: 1n, outputOctets: 0n, seconds: 1, prev: new Uint8Array(32).fill(9) });
    const after = session.update({ inputOctets: 2n, outputOctets: 0n, seconds: 2 });
    const out = refined(world, start, broken, after);
    expect(refusals(out)).toEqual({ 1: "JG_ERR_WIFI_VOUCHER_CHAIN", 2: "JG_ERR_WIFI_VOUCHER_CHAIN" });
    expect(out.routers[0]!.sessions[0]).toMatchObject({ inputOctets: 0n, seqs: [{ start: 0n, length: 1 }] });
  });

  it("reordered vouchers: the one sent out of order is refused, the chain goes on", () => {
    const { world, session } = setup();
    const start = session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, seq: 0 });
    const first = session.update({ inputOctets: 1n, outputOctets: 0n, seconds: 1, seq: 2 });
    const second = session.update({ inputOctets: 2n, outputOctets: 0n, seconds: 2, seq: 1 });
    const out = refined(world, start, first, second);
    expect(refusals(out)).toEqual({ 1: "JG_ERR_WIFI_VOUCHER_CHAIN" });
    expect(out.routers[0]!.sessions[0]).toMatchObject({
      inputOctets: 1n,
      seqs: [
        { start: 0n, length: 1 },
        { start: 2n, length: 1 },
      ],
    });
  });

  it("counters going backwards (octets or seconds)", () => {
    const { world, session } = setup();
    const records = [
      session.update({ inputOctets: 100n, outputOctets: 100n, seconds: 10 }),
      session.update({ inputOctets: 99n, outputOctets: 100n, seconds: 11 }),
    ];
    session.lastHash = records[0]!.hash;
    records.push(session.update({ inputOctets: 100n, outputOctets: 100n, seconds: 9 }));
    expect(refusals(refined(world, ...records))).toEqual({ 1: "JG_ERR_WIFI_COUNTER", 2: "JG_ERR_WIFI_COUNTER" });
  });

  it("a wrong gigaword wrap (octets fall, gigawords stay) reads as going backwards; a right one passes", () => {
    const { world, session } = setup();
    const nearWrap = 2n ** 32n - 10n;
    const start = session.update({ inputOctets: nearWrap, outputOctets: 0n, seconds: 100, voucher: "none" });
    const wrong = session.update({ inputOctets: 2n ** 32n + 5n, outputOctets: 0n, seconds: 101, voucher: "none", split: { inOctets: 5, inGigawords: 0 } });
    expect(refusals(refined(world, start, wrong))).toEqual({ 1: "JG_ERR_WIFI_COUNTER" });
    session.lastHash = start.hash;
    const right = session.update({ inputOctets: 2n ** 32n + 5n, outputOctets: 0n, seconds: 101, voucher: "none", split: { inOctets: 5, inGigawords: 1 } });
    const out = refined(world, start, right);
    expect(refusals(out)).toEqual({});
    expect(out.routers[0]!.sessions[0]!.inputOctets).toBe(2n ** 32n + 5n);
  });

  it("an update after the Stop, a second Start, a Start that chains to something", () => {
    const { world, session } = setup();
    const start = session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const stop = session.update({ inputOctets: 1n, outputOctets: 0n, seconds: 1, status: 2 });
    const after = session.update({ inputOctets: 2n, outputOctets: 0n, seconds: 2, status: 3 });
    expect(refusals(refined(world, start, stop, after))).toEqual({ 2: "JG_ERR_WIFI_SESSION" });
    const again = setup();
    const s0 = again.session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const s1 = again.session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 1, status: 1 });
    expect(refusals(refined(again.world, s0, s1))).toEqual({ 1: "JG_ERR_WIFI_SESSION" });
    const third = setup();
    expect(refusals(refined(third.world, third.session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, prev: new Uint8Array(32).fill(1) })))).toEqual({
      0: "JG_ERR_WIFI_VOUCHER_CHAIN",
    });
  });

  it("another client within the session, another envelope kind, a body that is not usage", () => {
    const { world, router, client, session } = setup();
    const start = session.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" });
    const thief = world.session(router, world.party("thief"), session.id);
    thief.lastHash = start.hash;
    thief.updates = 1;
    const swapped = thief.update({ inputOctets: 1n, outputOctets: 0n, seconds: 1, voucher: "none" });
    expect(refusals(refined(world, start, swapped))).toEqual({ 1: "JG_ERR_WIFI_CLIENT" });
    const meter = world.envelope(router, "meter.reading", new Uint8Array([0xa0]));
    const garbage = world.envelope(router, "router.usage", new Uint8Array([0xff, 0x00]));
    const out = refined(world, meter, garbage);
    expect(Object.values(refusals(out))).toEqual(["JG_ERR_WIFI_BODY", "JG_ERR_WIFI_BODY"]);
    void client;
  });
});

describe("refine output bounds", () => {
  it("the worst item (every envelope a session of its own, the most routers) fits W_R", () => {
    const world = new WifiWorld(crypto, deviceSide);
    const client = world.party("client");
    const records = [];
    const routers = Array.from({ length: ENVELOPE_DEVICES_PER_ITEM_MAX }, (_, r) => world.party(`router ${r}`));
    for (let k = 0; k < ENVELOPES_PER_ITEM_MAX; k++)
      records.push(world.session(routers[k % routers.length]!, client).update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" }));
    expect(records.length).toBe(ENVELOPES_PER_ITEM_MAX);
    const bytes = refine(world.envelopes(...records), memoryRefineContext(crypto));
    expect(bytes.length).toBe(
      ENVELOPES_OUTPUT_HEADER_BYTES + ENVELOPE_DEVICES_PER_ITEM_MAX * ROUTER_HEADER_BYTES + ENVELOPES_PER_ITEM_MAX * SESSION_DELTA_BYTES_MAX,
    );
    expect(bytes.length).toBeLessThanOrEqual(W_R);
  });

  it("an unknown item kind or a malformed payload fails the item (a gateway bug)", () => {
    expect(() => refine(Uint8Array.of(9), memoryRefineContext(crypto))).toThrow(/unknown item kind/);
    expect(() => refine(Uint8Array.of(0, 1, 0, 0), memoryRefineContext(crypto))).toThrow(/envelopes item/);
  });
});

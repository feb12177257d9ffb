import { describe, expect, it } from "vitest";
import { signingBytes } from "../../devices/envelope.ts";
import { encodeUsageBody } from "../../devices/wifi.ts";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { toHex } from "../common/bytes.ts";
import { parseSigningBytes } from "../common/envelope.ts";
import { REJECTION_CODES, type RejectionName } from "../common/errors.ts";
import { envelopeRejection, registrationRejection } from "../common/outcome.ts";
import { chargedMicros, OPEN_SESSIONS_PER_ROUTER_MAX } from "./accumulate.ts";
import { ACTIONS_PER_ITEM_MAX, ENVELOPE_DEVICES_PER_ITEM_MAX, ENVELOPES_PER_ITEM_MAX, REGISTRATIONS_PER_ITEM_MAX, type RouterTerms } from "./payload.ts";
import { decodeActionVerdict, decodeDevice, deviceKey, LEDGER_SLOTS_KEPT, ledgerKey, actionKey, PROTOCOL_FEE_PPM, STAKE_COOLDOWN_SLOTS } from "./storage.ts";
import { gasOf, type Party, realSides, type RouterParty, type TestSession, WifiWorld } from "./testing.ts";

const { crypto, deviceSide } = realSides({ hash, verifyEd25519, keyPairFromSeed, signEd25519, signingBytes, encodeUsageBody });

const GB = 1_000_000_000n;
const PRICE = 500_000n; // 0.50 per GB
const STAKE = 10_000_000n;
const fee = (amount: bigint) => (amount * BigInt(PROTOCOL_FEE_PPM)) / 1_000_000n;

interface Net {
  world: WifiWorld;
  owner: Party;
  client: Party;
  router: RouterParty;
  attestedRouter: RouterParty;
  parties: Party[];
}

function terms(owner: Party, over: Partial<RouterTerms> = {}): RouterTerms {
  return { owner: owner.id, priceMicrosPerGb: PRICE, stakeMicros: STAKE, name: "hotspot", ...over };
}

/** An owner with two routers (one with attested billing), a client with `balance`. */
function network(balance = 100_000_000n): Net {
  const world = new WifiWorld(crypto, deviceSide);
  const owner = world.party("owner");
  const client = world.party("client");
  const router = world.party("router");
  const attestedRouter = world.party("attested router");
  world.block(world.registrations({ party: owner, kind: "client" }, { party: client, kind: "client" }));
  world.block(world.topup(owner, 2n * STAKE), world.topup(client, balance));
  world.block(
    world.registrations(
      { party: router, kind: "router", router: terms(owner) },
      { party: attestedRouter, kind: "router", router: terms(owner, { attested: true, name: "radius" }) },
    ),
  );
  return { world, owner, client, router, attestedRouter, parties: [owner, client] };
}

/** Sends the records as one package in the next block; returns the package hash. */
function send(world: WifiWorld, ...records: Parameters<WifiWorld["envelopes"]>): Uint8Array {
  return world.block(world.envelopes(...records))[0]!;
}

function money(net: Net) {
  return {
    balances: net.parties.map((p) => net.world.account(p)!.balanceMicros),
    locked: net.parties.map((p) => net.world.account(p)!.lockedMicros),
    fees: net.world.fees(),
  };
}

function conserved(world: WifiWorld, parties: readonly Party[]): void {
  let total = world.fees();
  for (const p of parties) {
    const a = world.account(p);
    if (a !== null) total += a.balanceMicros + a.lockedMicros;
  }
  expect(total).toBe(world.stats().toppedUpMicros);
}

const refusalsOf = (world: WifiWorld, name: RejectionName) => world.stats().refusalsByCode[REJECTION_CODES[name]]!;

describe("registrations", () => {
  it("an account starts at zero; a router locks its stake from its owner's balance (a stake-lock entry)", () => {
    const net = network();
    const { world, owner, router } = net;
    expect(world.account(net.client)).toMatchObject({ balanceMicros: 100_000_000n, lockedMicros: 0n });
    expect(world.account(owner)).toMatchObject({ balanceMicros: 0n, lockedMicros: 2n * STAKE });
    expect(world.routerRecord(router)).toMatchObject({
      priceMicrosPerGb: PRICE,
      stakeMicros: STAKE,
      attested: false,
      status: "active",
      name: "hotspot",
      capacityBitsPerSecond: 1_000_000_000n,
    });
    expect(world.ledger().map((e) => [e.reason, toHex(e.router), toHex(e.client), e.amountMicros])).toEqual([
      ["stake-lock", router.hex, owner.hex, STAKE],
      ["stake-lock", net.attestedRouter.hex, owner.hex, STAKE],
    ]);
    expect(decodeDevice(world.storage.get(deviceKey(router.id))!)).toMatchObject({ kind: "router", settledHighestSeq: -1 });
    expect(decodeDevice(world.storage.get(deviceKey(owner.id))!)).toMatchObject({ kind: "client" });
    expect(world.stats()).toMatchObject({ accountsRegistered: 2n, routersRegistered: 2n, toppedUpMicros: 2n * STAKE + 100_000_000n });
    conserved(world, net.parties);
  });

  it("refuses, changing nothing and counting each: an unknown owner, a stake past the balance, a zero price, a device again", () => {
    const net = network();
    const { world, owner } = net;
    const before = money(net);
    const stranger = world.party("stranger");
    const [pkg] = world.block(
      world.registrations(
        { party: world.party("r1"), kind: "router", router: terms(stranger) },
        { party: world.party("r2"), kind: "router", router: terms(owner) }, // owner's balance is 0 now
        { party: world.party("r3"), kind: "router", router: terms(net.client, { priceMicrosPerGb: 0n }) },
        { party: net.client, kind: "client" },
      ),
    );
    const outcome = world.outcome(pkg!);
    expect(["r1", "r2", "r3"].map((n) => registrationRejection(outcome, world.party(n).id))).toEqual([
      "JG_ERR_WIFI_ACCOUNT",
      "JG_ERR_WIFI_STAKE",
      "JG_ERR_WIFI_AMOUNT",
    ]);
    expect(registrationRejection(outcome, net.client.id)).toBe("JG_ERR_DEVICE_EXISTS");
    expect(money(net)).toEqual(before);
    expect(world.routerRecord(world.party("r2"))).toBeNull();
    expect(world.stats().registrationsRejected).toBe(4n);
    for (const code of ["JG_ERR_WIFI_ACCOUNT", "JG_ERR_WIFI_STAKE", "JG_ERR_WIFI_AMOUNT", "JG_ERR_DEVICE_EXISTS"] as const)
      expect(refusalsOf(world, code)).toBe(1n);
  });
});

describe("billing", () => {
  it("bills cumulative octets at the price, pays the owner less the fee, and writes a usage entry", () => {
    const net = network();
    const { world, router, client, owner } = net;
    const s = world.session(router, client);
    send(world, s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }), s.update({ inputOctets: 3n * GB, outputOctets: 1n * GB, seconds: 3_600 }));
    const amount = 4n * PRICE;
    expect(world.account(client)!.balanceMicros).toBe(100_000_000n - amount);
    expect(world.account(owner)!.balanceMicros).toBe(amount - fee(amount));
    expect(world.fees()).toBe(fee(amount));
    const [entry] = world.ledger();
    expect(entry).toMatchObject({
      reason: "usage",
      inputOctets: 3n * GB,
      outputOctets: GB,
      priceMicrosPerGb: PRICE,
      amountMicros: amount,
      feeMicros: fee(amount),
      attested: false,
    });
    expect(toHex(entry!.session)).toBe(toHex(s.id));
    expect(world.sessionRecord(s)).toMatchObject({ billedMicros: amount, inputOctets: 3n * GB, stopped: false });
    expect(world.routerRecord(router)).toMatchObject({
      billedOctets: 4n * GB,
      billedMicros: amount,
      earnedMicros: amount - fee(amount),
      openSessions: 1,
      sessionsStarted: 1n,
    });
    conserved(world, net.parties);
  });

  it.each([
    // 1,500 octets an update at 0.50/GB is 0.00075 micros: each alone would round to 0; 20 of them bill 15.
    ["octets", 1_500n, 15n, 0n],
    // 60,000 octets an update bill 30 micros, whose 5 % fee (1.5) would round to 1 each; 20 of them pay 30.
    ["fees", 60_000n, 600n, 30n],
  ])("rounds on cumulative totals (%s): 20 small updates bill what one large one does", (_, step, paid, fees) => {
    const net = network();
    const { world, router, client } = net;
    const s = world.session(router, client);
    send(world, s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }));
    for (let k = 1; k <= 20; k++) send(world, s.update({ inputOctets: BigInt(k) * step, outputOctets: 0n, seconds: k }));
    expect(chargedMicros(20n * step, PRICE)).toBe(paid);
    expect(100_000_000n - world.account(client)!.balanceMicros).toBe(paid);
    expect(world.fees()).toBe(fees);
    conserved(world, net.parties);
  });

  it("a session keeps its start price; sessions started after a price change pay the new one", () => {
    const net = network();
    const { world, router, client } = net;
    const old = world.session(router, client);
    send(world, old.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }));
    world.block(world.actionsPayload({ actionId: world.actionId(), type: "setPrice", router: router.id, priceMicrosPerGb: 2n * PRICE }));
    const fresh = world.session(router, client);
    send(
      world,
      old.update({ inputOctets: GB, outputOctets: 0n, seconds: 10 }),
      fresh.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }),
      fresh.update({ inputOctets: GB, outputOctets: 0n, seconds: 10 }),
    );
    const byPrice = world.ledger().map((e) => [toHex(e.session), e.priceMicrosPerGb, e.amountMicros]);
    expect(byPrice).toEqual([
      [toHex(old.id), PRICE, PRICE],
      [toHex(fresh.id), 2n * PRICE, 2n * PRICE],
    ]);
  });

  it("never lets a balance go negative: bills what is left, marks the session exhausted, writes balance-exhausted", () => {
    const net = network(300_000n);
    const { world, router, client, owner } = net;
    const s = world.session(router, client);
    send(world, s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }), s.update({ inputOctets: GB, outputOctets: 0n, seconds: 100 }));
    expect(world.account(client)!.balanceMicros).toBe(0n);
    expect(world.ledger()[0]).toMatchObject({ reason: "balance-exhausted", amountMicros: 300_000n, feeMicros: fee(300_000n) });
    expect(world.account(owner)!.balanceMicros).toBe(300_000n - fee(300_000n));
    expect(world.sessionRecord(s)).toMatchObject({ exhausted: true, billedMicros: 300_000n });
    // A top-up later: the next update bills what was due and unpaid, at the session's price.
    world.block(world.topup(client, 1_000_000n));
    send(world, s.update({ inputOctets: GB, outputOctets: 0n, seconds: 101 }));
    expect(world.ledger()[0]).toMatchObject({ reason: "usage", amountMicros: PRICE - 300_000n });
    expect(world.stats().exhaustedUpdates).toBe(1n);
    conserved(world, net.parties);
  });

  it("router-attested usage: disputed and not billed unless the owner chose attested billing", () => {
    const net = network();
    const { world, router, attestedRouter, client } = net;
    const plain = world.session(router, client);
    const radius = world.session(attestedRouter, client);
    const before = money(net);
    send(
      world,
      plain.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" }),
      plain.update({ inputOctets: GB, outputOctets: 0n, seconds: 100, voucher: "none" }),
    );
    expect(money(net)).toEqual(before);
    expect(world.ledger()).toMatchObject([{ reason: "disputed", inputOctets: GB, amountMicros: 0n, attested: true }]);
    expect(world.routerRecord(router)!.disputedOctets).toBe(GB);
    send(
      world,
      radius.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" }),
      radius.update({ inputOctets: GB, outputOctets: 0n, seconds: 100, voucher: "none" }),
    );
    expect(world.ledger()).toMatchObject([{ reason: "usage", amountMicros: PRICE, attested: true }]);
    expect(world.stats()).toMatchObject({ disputedOctets: GB, billedOctets: GB });
    conserved(world, net.parties);
  });

  it("stops a session: the router's open sessions fall, the session is remembered as stopped", () => {
    const net = network();
    const { world, router, client } = net;
    const s = world.session(router, client);
    send(world, s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }), s.update({ inputOctets: GB, outputOctets: 0n, seconds: 10, status: 2, cause: 1 }));
    expect(world.sessionRecord(s)).toMatchObject({ stopped: true, terminateCause: 1 });
    expect(world.routerRecord(router)).toMatchObject({ openSessions: 0, sessionsStarted: 1n });
    expect(world.stats()).toMatchObject({ sessionsStarted: 1n, sessionsStopped: 1n });
  });
});

describe("bad input: coded, nothing billed, counted", () => {
  /** Sends `records` in one package and checks each listed seq was refused with its code, no money moved, and the stats counted it. */
  function refused(net: Net, records: Parameters<WifiWorld["envelopes"]>, expected: Record<number, RejectionName>): void {
    const { world } = net;
    const before = money(net);
    const counts = Object.fromEntries(Object.values(expected).map((name) => [name, refusalsOf(world, name)]));
    const rejectedBefore = world.stats().envelopesRejected;
    const pkg = send(world, ...records);
    const outcome = world.outcome(pkg);
    for (const [seq, name] of Object.entries(expected))
      expect(envelopeRejection(outcome, net.router.id, Number(seq)) ?? envelopeRejection(outcome, net.attestedRouter.id, Number(seq)), `seq ${seq}`).toBe(name);
    expect(money(net)).toEqual(before);
    expect(world.ledger().filter((e) => e.reason === "usage" || e.reason === "balance-exhausted")).toEqual([]);
    const tally: Record<string, bigint> = {};
    for (const name of Object.values(expected)) tally[name] = (tally[name] ?? 0n) + 1n;
    for (const [name, n] of Object.entries(tally)) expect(refusalsOf(world, name as RejectionName) - counts[name]!, name).toBe(n);
    expect(world.stats().envelopesRejected - rejectedBefore).toBe(BigInt(Object.keys(expected).length));
  }

  function started(net: Net, router: RouterParty = net.router): TestSession {
    const s = net.world.session(router, net.client);
    send(net.world, s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }), s.update({ inputOctets: GB, outputOctets: 0n, seconds: 100 }));
    return s;
  }

  it("a replayed envelope (the same (router, seq) again)", () => {
    const net = network();
    const s = net.world.session(net.router, net.client);
    const start = s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const update = s.update({ inputOctets: GB, outputOctets: 0n, seconds: 100 });
    send(net.world, start, update);
    refused(net, [update], { [update.seq]: "JG_ERR_ENVELOPE_REPLAY" });
  });

  it("a replayed voucher in a new envelope (its chain has moved on)", () => {
    const net = network();
    const s = started(net);
    const body = s.update({ inputOctets: 2n * GB, outputOctets: 0n, seconds: 200 });
    send(net.world, body);
    const signed = parseSigningBytes(body.signingBytes);
    if (!signed.ok) throw new Error(signed.error);
    const rewrapped = net.world.envelope(net.router, "router.usage", signed.value.body.slice());
    refused(net, [rewrapped], { [rewrapped.seq]: "JG_ERR_WIFI_VOUCHER_CHAIN" });
  });

  it("reordered vouchers across packages: the later one first is refused, the earlier one then settles", () => {
    const net = network();
    const s = started(net);
    const second = s.update({ inputOctets: 2n * GB, outputOctets: 0n, seconds: 200 });
    const third = s.update({ inputOctets: 3n * GB, outputOctets: 0n, seconds: 300 });
    refused(net, [third], { [third.seq]: "JG_ERR_WIFI_VOUCHER_CHAIN" });
    send(net.world, second);
    expect(net.world.sessionRecord(s)!.inputOctets).toBe(2n * GB);
  });

  it("counters going backwards against the stored ones (a voucher the client did sign)", () => {
    const net = network();
    const s = started(net);
    const back = s.update({ inputOctets: GB - 1n, outputOctets: 0n, seconds: 200 });
    refused(net, [back], { [back.seq]: "JG_ERR_WIFI_COUNTER" });
  });

  it("a delta whose first update goes below the stored counters, though its last does not", () => {
    const net = network();
    const s = started(net); // stored: 1 GB in
    const dip = s.update({ inputOctets: GB - 1n, outputOctets: 0n, seconds: 150, voucher: "none" });
    const recover = s.update({ inputOctets: 2n * GB, outputOctets: 0n, seconds: 200 });
    refused(net, [dip, recover], { [dip.seq]: "JG_ERR_WIFI_COUNTER", [recover.seq]: "JG_ERR_WIFI_COUNTER" });
  });

  it("a wrong gigaword wrap against the stored counters", () => {
    const net = network();
    const s = net.world.session(net.attestedRouter, net.client);
    send(
      net.world,
      s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" }),
      s.update({ inputOctets: 2n ** 32n - 10n, outputOctets: 0n, seconds: 100, voucher: "none" }),
    );
    const wrong = s.update({ inputOctets: 2n ** 32n + 5n, outputOctets: 0n, seconds: 101, voucher: "none", split: { inOctets: 5, inGigawords: 0 } });
    refused(net, [wrong], { [wrong.seq]: "JG_ERR_WIFI_COUNTER" });
  });

  it("octets beyond the router's capacity × seconds", () => {
    const net = network();
    const s = net.world.session(net.router, net.client);
    const start = s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    // 1 Gbit/s for 10 s (+1 s slack) is 1.375 GB at most.
    const tooMuch = s.update({ inputOctets: 1_400_000_000n, outputOctets: 0n, seconds: 10 });
    refused(net, [start, tooMuch], { [start.seq]: "JG_ERR_WIFI_CAPACITY", [tooMuch.seq]: "JG_ERR_WIFI_CAPACITY" });
  });

  it("usage for a deregistered router", () => {
    const net = network();
    const s = started(net);
    net.world.block(net.world.actionsPayload({ actionId: net.world.actionId(), type: "deregister", router: net.router.id }));
    const after = s.update({ inputOctets: 2n * GB, outputOctets: 0n, seconds: 200 });
    refused(net, [after], { [after.seq]: "JG_ERR_WIFI_ROUTER" });
  });

  it("usage naming a client that has no account, or an unregistered router", () => {
    const net = network();
    const ghost = net.world.session(net.router, net.world.party("ghost"));
    const start = ghost.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    refused(net, [start], { [start.seq]: "JG_ERR_WIFI_CLIENT" });
    const rogue = net.world.party("rogue router");
    const record = net.world.session(rogue, net.client).update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    const pkg = send(net.world, record);
    expect(envelopeRejection(net.world.outcome(pkg), rogue.id, record.seq)).toBe("JG_ERR_DEVICE_UNREGISTERED");
  });

  it("an update for a stopped session, an interim for no session, a second Start", () => {
    const net = network();
    const s = started(net);
    send(net.world, s.update({ inputOctets: 2n * GB, outputOctets: 0n, seconds: 200, status: 2 }));
    const late = s.update({ inputOctets: 3n * GB, outputOctets: 0n, seconds: 300, status: 3 });
    const orphan = net.world.session(net.router, net.client);
    orphan.updates = 1; // as if its Start was lost: its first update is an interim
    const interim = orphan.update({ inputOctets: GB, outputOctets: 0n, seconds: 10 });
    const again = net.world.session(net.router, net.client, s.id).update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 });
    refused(net, [late, interim], { [late.seq]: "JG_ERR_WIFI_SESSION", [interim.seq]: "JG_ERR_WIFI_SESSION" });
    refused(net, [again], { [again.seq]: "JG_ERR_WIFI_SESSION" });
  });

  it("top-ups of zero or past the maximum, to an unknown account, and a replayed action", () => {
    const net = network();
    const { world, client } = net;
    const before = money(net);
    const id = world.actionId();
    world.block(
      world.actionsPayload(
        { actionId: world.actionId(), type: "topup", account: client.id, amountMicros: 0n },
        { actionId: world.actionId(), type: "topup", account: client.id, amountMicros: 10n ** 12n + 1n },
        { actionId: world.actionId(), type: "topup", account: world.party("nobody").id, amountMicros: 5n },
        { actionId: id, type: "topup", account: client.id, amountMicros: 7n },
        { actionId: world.actionId(), type: "setPrice", router: client.id, priceMicrosPerGb: 5n },
      ),
    );
    world.block(world.topup(client, 7n, id));
    expect(money(net).balances).toEqual([before.balances[0], before.balances[1]! + 7n]); // only the good top-up, once
    expect(world.stats()).toMatchObject({ actionsRejected: 5n });
    expect(refusalsOf(world, "JG_ERR_WIFI_AMOUNT")).toBe(2n);
    expect(refusalsOf(world, "JG_ERR_WIFI_ACCOUNT")).toBe(1n);
    expect(refusalsOf(world, "JG_ERR_WIFI_ROUTER")).toBe(1n);
    expect(refusalsOf(world, "JG_ERR_WIFI_REPLAY")).toBe(1n);
    expect(decodeActionVerdict(world.storage.get(actionKey(id))!)).toMatchObject({ status: "applied", code: null });
    conserved(world, net.parties);
  });

  it("a Start beyond OPEN_SESSIONS_PER_ROUTER_MAX open sessions of the router", () => {
    const net = network();
    const { world, attestedRouter, client } = net;
    for (let sent = 0; sent < OPEN_SESSIONS_PER_ROUTER_MAX; sent += 256) {
      const records = Array.from({ length: Math.min(256, OPEN_SESSIONS_PER_ROUTER_MAX - sent) }, () =>
        world.session(attestedRouter, client).update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" }),
      );
      send(world, ...records);
    }
    expect(world.routerRecord(attestedRouter)!.openSessions).toBe(OPEN_SESSIONS_PER_ROUTER_MAX);
    const one = world.session(attestedRouter, client).update({ inputOctets: 0n, outputOctets: 0n, seconds: 0, voucher: "none" });
    refused(net, [one], { [one.seq]: "JG_ERR_WIFI_SESSION" });
  });
});

describe("bounded rings", () => {
  it("a stopped session is remembered (its replay refused) until CLOSED_SESSIONS_KEPT stops later, then forgotten", () => {
    const world = new WifiWorld(crypto, deviceSide, { closedSessionsKept: 2, actionsKept: 2 });
    const owner = world.party("owner");
    const client = world.party("client");
    const router = world.party("router");
    world.block(world.registrations({ party: owner, kind: "client" }, { party: client, kind: "client" }));
    world.block(world.topup(owner, STAKE), world.topup(client, 10n ** 9n));
    world.block(world.registrations({ party: router, kind: "router", router: terms(owner) }));
    const sessions = [0, 1, 2].map(() => world.session(router, client));
    const starts = sessions.map((s) => s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }));
    for (const [k, s] of sessions.entries()) {
      send(world, ...(k === 0 ? starts : []), s.update({ inputOctets: GB, outputOctets: 0n, seconds: 10, status: 2 }));
      if (k < 2) expect(world.sessionRecord(sessions[0]!)).toMatchObject({ stopped: true });
    }
    expect(world.sessionRecord(sessions[0]!)).toBeNull(); // evicted by the third stop
    expect(world.sessionRecord(sessions[1]!)).toMatchObject({ stopped: true });
    // Its replayed Start, now forgotten, opens it again: the documented horizon of CLOSED_SESSIONS_KEPT.
    const replay = world.envelope(router, "router.usage", (parseSigningBytes(starts[0]!.signingBytes) as { value: { body: Uint8Array } }).value.body.slice());
    send(world, replay);
    expect(world.sessionRecord(sessions[0]!)).toMatchObject({ stopped: false, inputOctets: 0n });
  });

  it("an action's verdict is kept until ACTIONS_KEPT actions later; its replay is refused until then", () => {
    const world = new WifiWorld(crypto, deviceSide, { closedSessionsKept: 2, actionsKept: 2 });
    const client = world.party("client");
    world.block(world.registrations({ party: client, kind: "client" }));
    const ids = [world.actionId(), world.actionId(), world.actionId()];
    world.block(world.topup(client, 1n, ids[0]), world.topup(client, 1n, ids[1]));
    world.block(world.topup(client, 1n, ids[0]));
    expect(world.account(client)!.balanceMicros).toBe(2n);
    expect(refusalsOf(world, "JG_ERR_WIFI_REPLAY")).toBe(1n);
    world.block(world.topup(client, 1n, ids[2]));
    expect(world.action(ids[0]!)).toBeNull();
    expect(world.action(ids[1]!)).toMatchObject({ code: 0 });
    conserved(world, [client]);
  });
});

describe("gas", () => {
  it("the largest item of each kind accumulates within the gas the gateway sets for it, and that is within G_A", () => {
    const world = new WifiWorld(crypto, deviceSide);
    const client = world.party("client");
    const owners = Array.from({ length: REGISTRATIONS_PER_ITEM_MAX - 1 }, (_, i) => world.party(`owner ${i}`));
    const registrations = world.registrations({ party: client, kind: "client" }, ...owners.map((party) => ({ party, kind: "client" as const })));
    world.blockOf([[registrations]], gasOf(registrations));
    const topups = world.actionsPayload(
      ...[client, ...owners.slice(0, ACTIONS_PER_ITEM_MAX - 1)].map((account) => ({
        actionId: world.actionId(),
        type: "topup" as const,
        account: account.id,
        amountMicros: 10n ** 9n,
      })),
    );
    world.blockOf([[topups]], gasOf(topups));
    const routers = Array.from({ length: REGISTRATIONS_PER_ITEM_MAX }, (_, i) => world.party(`router ${i}`));
    const routerItem = world.registrations(
      ...routers.map((party, i) => ({ party, kind: "router" as const, router: terms(owners[i % 64]!, { name: "x".repeat(32) }) })),
    );
    world.blockOf([[routerItem]], gasOf(routerItem));
    expect(world.stats()).toMatchObject({
      accountsRegistered: BigInt(REGISTRATIONS_PER_ITEM_MAX),
      routersRegistered: BigInt(REGISTRATIONS_PER_ITEM_MAX),
      actionsApplied: BigInt(ACTIONS_PER_ITEM_MAX),
    });
    // Every envelope a session of its own, billed (a Start with octets already counted).
    const records = Array.from({ length: ENVELOPES_PER_ITEM_MAX }, (_, k) =>
      world.session(routers[k % ENVELOPE_DEVICES_PER_ITEM_MAX]!, client).update({ inputOctets: 100_000_000n, outputOctets: 0n, seconds: 0 }),
    );
    const usage = world.envelopes(...records);
    world.blockOf([[usage]], gasOf(usage));
    expect(world.lastGasUsed).toBeLessThan(gasOf(usage)); // measured: 1.2e6 of 4.9e6 (the Store reads each key once)
    expect(world.stats()).toMatchObject({ envelopesSettled: BigInt(ENVELOPES_PER_ITEM_MAX), sessionsStarted: BigInt(ENVELOPES_PER_ITEM_MAX) });
    expect(world.ledger().length).toBe(ENVELOPES_PER_ITEM_MAX);
    for (const gas of [gasOf(registrations), gasOf(topups), gasOf(routerItem), gasOf(usage)]) expect(gas).toBeLessThanOrEqual(10_000_000n);
  });
});

describe("stakes and the ledger's retention", () => {
  it("a deregistered router's stake returns to its owner after the cool-down, once", () => {
    const net = network();
    const { world, router, owner } = net;
    world.block(world.actionsPayload({ actionId: world.actionId(), type: "deregister", router: router.id }));
    const deregisteredAt = world.slot;
    expect(world.routerRecord(router)).toMatchObject({ status: "deregistered", deregisteredSlot: deregisteredAt });
    world.advanceTo(deregisteredAt + STAKE_COOLDOWN_SLOTS - 1);
    expect(world.account(owner)).toMatchObject({ balanceMicros: 0n, lockedMicros: 2n * STAKE });
    world.block();
    expect(world.account(owner)).toMatchObject({ balanceMicros: STAKE, lockedMicros: STAKE });
    expect(world.ledger()).toMatchObject([{ reason: "stake-return", amountMicros: STAKE }]);
    expect(world.routerRecord(router)!.status).toBe("stake-returned");
    world.block();
    expect(world.account(owner)).toMatchObject({ balanceMicros: STAKE, lockedMicros: STAKE });
    world.block(world.actionsPayload({ actionId: world.actionId(), type: "deregister", router: router.id }));
    expect(refusalsOf(world, "JG_ERR_WIFI_ROUTER")).toBe(1n); // a router is deregistered once
    expect(world.stats()).toMatchObject({ routersDeregistered: 1n, stakesReturned: 1n });
    conserved(world, net.parties);
  });

  it("deletes a slot's ledger entries LEDGER_SLOTS_KEPT slots later", () => {
    const net = network();
    const { world } = net;
    const slot = world.slot;
    expect(world.storage.get(ledgerKey(slot))).not.toBeNull();
    world.slot = slot + LEDGER_SLOTS_KEPT - 2;
    world.block();
    expect(world.storage.get(ledgerKey(slot))).not.toBeNull();
    world.block();
    expect(world.storage.get(ledgerKey(slot))).toBeNull();
  });
});

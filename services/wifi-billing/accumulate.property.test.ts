// Property tests of wifi-billing's accumulate: value is conserved over random workloads, and the
// money a workload moves does not depend on how its updates are split into packages.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { signingBytes } from "../../devices/envelope.ts";
import { encodeUsageBody } from "../../devices/wifi.ts";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { ascii, toHex } from "../common/bytes.ts";
import type { EnvelopeRecord } from "../common/envelope.ts";
import { STAKE_COOLDOWN_SLOTS } from "./storage.ts";
import { type Party, realSides, type RouterParty, type TestSession, WifiWorld } from "./testing.ts";

const { crypto, deviceSide } = realSides({ hash, verifyEd25519, keyPairFromSeed, signEd25519, signingBytes, encodeUsageBody });

const CLIENTS = 3;
const OWNERS = 2;
const ROUTERS = 3;

interface Cast {
  world: WifiWorld;
  accounts: Party[];
  clients: Party[];
  owners: Party[];
  routers: RouterParty[];
}

/** Accounts for clients and owners, routers (router 0 with attested billing) with their stakes locked. */
function cast(stakes: readonly bigint[], ownerFunds: bigint, clientFunds: readonly bigint[]): Cast {
  const world = new WifiWorld(crypto, deviceSide);
  const clients = Array.from({ length: CLIENTS }, (_, i) => world.party(`client ${i}`));
  const owners = Array.from({ length: OWNERS }, (_, i) => world.party(`owner ${i}`));
  const routers = Array.from({ length: ROUTERS }, (_, i) => world.party(`router ${i}`));
  world.block(world.registrations(...[...clients, ...owners].map((party) => ({ party, kind: "client" as const }))));
  world.block(...owners.map((o) => world.topup(o, ownerFunds)), ...clients.map((c, i) => world.topup(c, clientFunds[i]!)));
  world.block(
    world.registrations(
      ...routers.map((party, i) => ({
        party,
        kind: "router" as const,
        router: { owner: owners[i % OWNERS]!.id, priceMicrosPerGb: 100_000n + 250_000n * BigInt(i), stakeMicros: stakes[i]!, attested: i === 0, name: `r${i}` },
      })),
    ),
  );
  return { world, accounts: [...clients, ...owners], clients, owners, routers };
}

/** Σ balances + Σ locked + fees, and what top-ups credited. */
function ledgerTotals(c: Cast): { held: bigint; toppedUp: bigint } {
  let held = c.world.fees();
  for (const p of c.accounts) {
    const a = c.world.account(p)!;
    held += a.balanceMicros + a.lockedMicros;
  }
  return { held, toppedUp: c.world.stats().toppedUpMicros };
}

// Commands of a random workload, one block each.
const usageArb = fc.record({
  kind: fc.constant("usage" as const),
  router: fc.nat({ max: ROUTERS - 1 }),
  client: fc.nat({ max: CLIENTS - 1 }),
  session: fc.nat({ max: 3 }),
  /** Octets added per update (input, output) and seconds. */
  steps: fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 3_000_000_000n }), fc.bigInt({ min: 0n, max: 500_000_000n }), fc.integer({ min: 30, max: 600 })), {
    minLength: 1,
    maxLength: 3,
  }),
  mode: fc.constantFrom("client" as const, "client" as const, "none" as const, "forged" as const, "bad-chain" as const, "backwards" as const),
  stop: fc.boolean(),
});
const commandArb = fc.oneof(
  { weight: 6, arbitrary: usageArb },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("topup" as const),
      account: fc.nat({ max: CLIENTS + OWNERS - 1 }),
      amount: fc.bigInt({ min: 0n, max: 5_000_000n }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("price" as const), router: fc.nat({ max: ROUTERS - 1 }), price: fc.bigInt({ min: 0n, max: 3_000_000n }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deregister" as const), router: fc.nat({ max: ROUTERS - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("wait" as const), slots: fc.integer({ min: 1, max: STAKE_COOLDOWN_SLOTS + 10 }) }) },
);

describe("value is conserved", () => {
  it("Σ balances + Σ locked + fees = Σ top-ups after every block of a random workload (fraud included)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 1n, max: 3_000_000n }), { minLength: ROUTERS, maxLength: ROUTERS }),
        fc.array(fc.bigInt({ min: 0n, max: 4_000_000n }), { minLength: CLIENTS, maxLength: CLIENTS }),
        fc.array(commandArb, { minLength: 1, maxLength: 25 }),
        (stakes, clientFunds, commands) => {
          const c = cast(stakes, 2_000_000n, clientFunds);
          const sessions = new Map<string, { s: TestSession; input: bigint; output: bigint; seconds: number }>();
          let totals = ledgerTotals(c);
          expect(totals.held).toBe(totals.toppedUp);
          for (const cmd of commands) {
            const { world } = c;
            if (cmd.kind === "topup") world.block(world.topup(c.accounts[cmd.account]!, cmd.amount));
            else if (cmd.kind === "price")
              world.block(
                world.actionsPayload({ actionId: world.actionId(), type: "setPrice", router: c.routers[cmd.router]!.id, priceMicrosPerGb: cmd.price }),
              );
            else if (cmd.kind === "deregister")
              world.block(world.actionsPayload({ actionId: world.actionId(), type: "deregister", router: c.routers[cmd.router]!.id }));
            else if (cmd.kind === "wait") world.advanceTo(world.slot + cmd.slots);
            else {
              const key = `${cmd.router}/${cmd.client}/${cmd.session}`;
              let state = sessions.get(key);
              if (state === undefined) {
                state = { s: world.session(c.routers[cmd.router]!, c.clients[cmd.client]!), input: 0n, output: 0n, seconds: 0 };
                sessions.set(key, state);
              }
              const records: EnvelopeRecord[] = [];
              for (const [k, [di, dout, dsec]] of cmd.steps.entries()) {
                const last = k === cmd.steps.length - 1;
                const honest = cmd.mode === "client" || cmd.mode === "none";
                const counters =
                  cmd.mode === "backwards" && state.input > 0n
                    ? { inputOctets: state.input - 1n, outputOctets: state.output, seconds: state.seconds + dsec }
                    : { inputOctets: state.input + di, outputOctets: state.output + dout, seconds: state.seconds + dsec };
                const before = state.s.lastHash;
                const updates = state.s.updates;
                records.push(
                  state.s.update({
                    ...counters,
                    voucher: cmd.mode === "none" ? "none" : cmd.mode === "forged" ? "forged" : "client",
                    ...(cmd.mode === "bad-chain" ? { prev: hash(ascii(key)) } : {}),
                    ...(last && cmd.stop ? { status: 2 as const } : {}),
                  }),
                );
                if (honest) Object.assign(state, counters);
                else {
                  state.s.lastHash = before; // the service refuses it: the session stays where it was
                  state.s.updates = updates;
                }
              }
              if (cmd.stop && (cmd.mode === "client" || cmd.mode === "none")) sessions.delete(key);
              world.block(world.envelopes(...records));
            }
            totals = ledgerTotals(c);
            expect(totals.held).toBe(totals.toppedUp);
          }
          // Locked is exactly the stakes of routers not yet returned.
          for (const [i, owner] of c.owners.entries()) {
            const stakesHeld = c.routers
              .filter((_, r) => r % OWNERS === i)
              .reduce((sum, r) => {
                const record = c.world.routerRecord(r);
                return record === null || record.status === "stake-returned" ? sum : sum + record.stakeMicros;
              }, 0n);
            expect(c.world.account(owner)!.lockedMicros).toBe(stakesHeld);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe("the same workload moves the same money however it is packaged", () => {
  /** A fixed list of honest updates (voucher or router-attested), in the order the routers send them. */
  function workload(
    c: Cast,
    plan: readonly { router: number; client: number; session: number; di: bigint; dout: bigint; dsec: number; attested: boolean; stop: boolean }[],
  ): EnvelopeRecord[] {
    const sessions = new Map<string, { s: TestSession; input: bigint; output: bigint; seconds: number } | "stopped">();
    const records: EnvelopeRecord[] = [];
    for (const p of plan) {
      const key = `${p.router}/${p.client}/${p.session}`;
      let state = sessions.get(key);
      if (state === "stopped") continue;
      if (state === undefined) {
        state = { s: c.world.session(c.routers[p.router]!, c.clients[p.client]!), input: 0n, output: 0n, seconds: 0 };
        sessions.set(key, state);
      }
      state.input += p.di;
      state.output += p.dout;
      state.seconds += p.dsec;
      const stop = p.stop && state.s.updates > 0;
      records.push(
        state.s.update({
          inputOctets: state.input,
          outputOctets: state.output,
          seconds: state.seconds,
          voucher: p.attested ? "none" : "client",
          ...(stop ? { status: 2 as const } : {}),
        }),
      );
      if (stop) sessions.set(key, "stopped");
    }
    return records;
  }

  /**
   * What the claim covers: accounts, fees, sessions (counters, chain, billed micros), routers'
   * micros. Not whether octets were counted as disputed or billed: router-attested updates followed
   * by a voucher are billed as one delta in one package, but disputed and then billed by the
   * voucher (which signs the cumulative counters) when split; the money is the same.
   */
  function money(c: Cast, withSlots: boolean): unknown {
    const strip = <T extends object>(record: T | null, fields: string[]) =>
      record === null ? null : Object.fromEntries(Object.entries(record).filter(([k]) => !fields.includes(k)));
    const sessionIds: string[] = [];
    for (const [hex] of c.world.storage.values) if (hex.startsWith(toHex(ascii("session/")))) sessionIds.push(hex);
    return {
      accounts: c.accounts.map((p) => c.world.account(p)),
      fees: c.world.fees(),
      routers: c.routers.map((r) => strip(c.world.routerRecord(r), ["billedOctets", "disputedOctets"])),
      sessions: sessionIds.sort().map((hex) => {
        const value = c.world.storage.values.get(hex)!;
        return withSlots ? toHex(value) : toHex(value.subarray(0, value.length - 8)); // less startSlot and lastSlot, the last 8 bytes
      }),
      stats: (({ billedMicros, toppedUpMicros, sessionsStarted, sessionsStopped, envelopesSettled }) => ({
        billedMicros,
        toppedUpMicros,
        sessionsStarted,
        sessionsStopped,
        envelopesSettled,
      }))(c.world.stats()),
    };
  }

  const planArb = fc.array(
    fc.record({
      router: fc.nat({ max: ROUTERS - 1 }),
      client: fc.nat({ max: CLIENTS - 1 }),
      session: fc.nat({ max: 2 }),
      di: fc.bigInt({ min: 0n, max: 2_000_000_000n }),
      dout: fc.bigInt({ min: 0n, max: 300_000_000n }),
      dsec: fc.integer({ min: 30, max: 300 }),
      attested: fc.boolean(),
      stop: fc.boolean(),
    }),
    { minLength: 1, maxLength: 40 },
  );

  it("one package, several packages in one block, or one block each: the same balances, fees, sessions and router totals", () => {
    fc.assert(
      fc.property(planArb, fc.array(fc.nat({ max: 1_000 }), { maxLength: 6 }), (plan, cuts) => {
        // Balances that cover everything: the claim is about packaging; when a balance runs out,
        // which of a client's concurrent sessions pays first depends on the order packages settle.
        const run = (split: "one" | "packages" | "blocks") => {
          const c = cast([1_000n, 1_000n, 1_000n], 1_000_000n, [10n ** 12n, 10n ** 12n, 10n ** 12n]);
          const records = workload(c, plan);
          const at = [...new Set(cuts.map((x) => x % (records.length + 1)))].sort((a, b) => a - b);
          const chunks =
            split === "one"
              ? [records]
              : [0, ...at].map((from, i, all) => records.slice(from, all[i + 1] ?? records.length)).filter((chunk) => chunk.length > 0);
          if (split === "blocks") for (const chunk of chunks) c.world.block(c.world.envelopes(...chunk));
          else c.world.blockOf(chunks.map((chunk) => [c.world.envelopes(...chunk)]));
          return c;
        };
        const one = run("one");
        const packages = run("packages");
        const blocks = run("blocks");
        expect(money(packages, true)).toEqual(money(one, true));
        expect(money(blocks, false)).toEqual(money(one, false));
        const total = ledgerTotals(blocks);
        expect(total.held).toBe(total.toppedUp);
      }),
      { numRuns: 40 },
    );
  });
});

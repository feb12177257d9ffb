import { Credential, ReportGuarantee, WorkPackage, type AvailabilityAssurance, type Block } from "@typeberry/lib/block";
import { asKnownSize } from "@typeberry/lib/collections";
import { Bytes } from "@typeberry/lib/bytes";
import { describe, expect, it } from "vitest";
import { counterPayload, COUNTER_KEY, readU64 } from "../testing/counter/types.ts";
import counter from "../testing/counter/service.ts";
import { assure } from "../availability/assurance.ts";
import { decode, toHex } from "../codec/jam.ts";
import { guarantee } from "../guarantor/guarantee.ts";
import { guarantorsOfCore } from "../guarantor/assignment.ts";
import { buildReport } from "../guarantor/report.ts";
import { hash } from "../crypto/hash.ts";
import { StateComponents } from "../state/components.ts";
import type { State } from "../state/kv.ts";
import { COUNTER_CODE_HASH, COUNTER_SERVICE_ID, counterGenesis, counterItem, submitterKey } from "../testing/fixtures.ts";
import { buildWorkPackage } from "../intake/builder.ts";
import { genesisBlock, headerHash, makeExtrinsic, sealBlock } from "./block.ts";
import { genesisState, nativeCodeHash } from "./genesis.ts";
import { type ChainParams, tinyParams } from "./params.ts";
import { applyBlock } from "./stf.ts";
import { devValidatorKeys } from "./validators.ts";

const validators = devValidatorKeys(tinyParams.validatorsCount);
const resolve = (codeHash: Uint8Array) => (toHex(codeHash) === toHex(nativeCodeHash("counter")) ? counter : null);

/** A chain in memory: genesis, then blocks the test builds and imports through the STF. */
class Chain {
  readonly state: State;
  parentHash: Uint8Array;
  slot = 0;
  constructor(
    readonly params: ChainParams = tinyParams,
    services = counterGenesis(),
  ) {
    this.state = genesisState(
      params,
      validators.map((v) => v.publicKey),
      services,
    );
    this.parentHash = headerHash(params, genesisBlock(params, this.state.root()).header);
  }
  block(
    slot: number,
    guarantees: ReportGuarantee[] = [],
    assurances: AvailabilityAssurance[] = [],
    author = validators[slot % this.params.validatorsCount]!,
  ): Block {
    return sealBlock(
      this.params,
      { parentHash: this.parentHash, priorStateRoot: this.state.root(), slot, authorIndex: slot % this.params.validatorsCount },
      makeExtrinsic(guarantees, assurances),
      author,
    );
  }
  import(block: Block) {
    const result = applyBlock(this.state, this.params, resolve, block, this.parentHash, this.state.root());
    if (result.ok) {
      this.parentHash = headerHash(this.params, block.header);
      this.slot = block.header.timeSlotIndex;
    }
    return result;
  }
  /** A report of one counter increment on `core`, as a guarantor would build it. */
  report(core: number, amount: bigint, accumulateGasLimit = 1_000_000n) {
    const pkg = buildWorkPackage(this.params, {
      signer: submitterKey,
      anchor: { headerHash: this.parentHash, stateRoot: this.state.root(), slot: this.slot },
      items: [counterItem(counterPayload.increment(amount), { accumulateGasLimit })],
    });
    const p = decode(WorkPackage.Codec, pkg.bytes, this.params.spec) as WorkPackage;
    const output = Uint8Array.from([0, ...counterPayload.increment(amount).subarray(1)]);
    const built = buildReport(this.params, p, { packageHash: pkg.hash, bundleBytes: pkg.bytes.length, erasureRoot: hash(pkg.bytes) }, core, [
      { ok: true, output, payloadHash: hash(p.items[0]!.payload.raw), gasUsed: 1n },
    ]);
    if (!built.ok) throw new Error(built.error.detail);
    return built.value;
  }
  assurances(cores: number[], count = this.params.validatorsCount) {
    return validators.slice(0, count).map((v, i) => assure(this.params, v, i, this.parentHash, cores));
  }
  counter(): bigint {
    return readU64(new StateComponents(this.state, this.params).storageGet(COUNTER_SERVICE_ID, COUNTER_KEY));
  }
}

function rejects(chain: Chain, block: Block, reason: RegExp) {
  const root = chain.state.root();
  const result = chain.import(block);
  expect(result.ok ? "imported" : result.error).toMatch(reason);
  expect(toHex(chain.state.root())).toBe(toHex(root)); // a rejected block changes nothing
}

describe("state transition", () => {
  it("imports empty blocks and advances the slot", () => {
    const chain = new Chain();
    expect(chain.import(chain.block(1)).ok).toBe(true);
    expect(chain.import(chain.block(3)).ok).toBe(true);
    expect(new StateComponents(chain.state, tinyParams).timeslot()).toBe(3);
  });

  it("rejects a block with a past slot, another parent, a bad seal or a wrong author", () => {
    const chain = new Chain();
    chain.import(chain.block(2));
    rejects(chain, chain.block(2), /slot 2 is not after/);
    const orphan = new Chain().block(3);
    rejects(chain, orphan, /parent hash|prior state root/);
    rejects(chain, chain.block(3, [], [], validators[0]!), /bad seal/);
  });

  it("takes a report through guarantee, assurance and accumulation", () => {
    const chain = new Chain();
    const report = chain.report(0, 5n);
    expect(chain.import(chain.block(1, [guarantee(tinyParams, validators, report, 1)])).ok).toBe(true);
    expect(new StateComponents(chain.state, tinyParams).pending()[0]?.report).toBeDefined();
    const result = chain.import(chain.block(2, [], chain.assurances([0])));
    expect(result.ok && result.value.accumulation.accumulatedPackages.length).toBe(1);
    expect(chain.counter()).toBe(5n);
  });

  it("checks guarantee signatures and guarantor assignment before inclusion", () => {
    const chain = new Chain();
    const report = chain.report(0, 1n);
    const good = guarantee(tinyParams, validators, report, 1);
    const forged = ReportGuarantee.create({
      ...good,
      credentials: asKnownSize(good.credentials.map((c, i) => (i === 0 ? Credential.create({ ...c, signature: Bytes.fill(64, 7).asOpaque() }) : c))),
    });
    rejects(chain, chain.block(1, [forged]), /bad signature from validator/);
    const outsider = guarantorsOfCore(tinyParams, 1, 1)[0]!;
    const wrongGuarantor = guarantee(tinyParams, validators, chain.report(1, 1n), 1).credentials[0]!;
    const byOutsider = ReportGuarantee.create({
      ...good,
      credentials: asKnownSize([good.credentials[0]!, Credential.create({ ...wrongGuarantor, validatorIndex: outsider as never })]),
    });
    rejects(chain, chain.block(1, [byOutsider]), /is not a guarantor of core 0/);
    // Fewer than two credentials cannot even be encoded (GP 11.4: the codec bounds them to 2..3).
  });

  it("rejects assurances that are forged, unanchored, or for a core with nothing pending", () => {
    const chain = new Chain();
    chain.import(chain.block(1, [guarantee(tinyParams, validators, chain.report(0, 1n), 1)]));
    const assurances = chain.assurances([0]);
    const forged = assurances.map((a, i) => (i === 2 ? ({ ...a, signature: Bytes.fill(64, 1).asOpaque() } as AvailabilityAssurance) : a));
    rejects(chain, chain.block(2, [], forged), /bad assurance signature from validator 2/);
    rejects(chain, chain.block(2, [], chain.assurances([1])), /has no pending report/);
    const stranger = assure(tinyParams, devValidatorKeys(7)[6]!, 6, chain.parentHash, [0]);
    rejects(chain, chain.block(2, [], [...assurances.slice(0, 5), stranger]), /bad assurance signature from validator 6/);
  });

  it("needs more than two thirds of validators to make a report available, and drops it after U slots", () => {
    const chain = new Chain();
    chain.import(chain.block(1, [guarantee(tinyParams, validators, chain.report(0, 1n), 1)]));
    const four = chain.import(chain.block(2, [], chain.assurances([0], 4))); // 4 of 6 is not more than 2/3
    expect(four.ok && four.value.available.length).toBe(0);
    for (let slot = 3; slot < 1 + tinyParams.availabilityTimeoutSlots; slot++) expect(chain.import(chain.block(slot)).ok).toBe(true);
    const timeout = chain.import(chain.block(1 + tinyParams.availabilityTimeoutSlots));
    expect(timeout.ok && timeout.value.timedOut.length).toBe(1);
    expect(chain.counter()).toBe(0n);
    expect(new StateComponents(chain.state, tinyParams).pending()[0]).toBeNull();
  });

  it("accumulates within the block's gas and queues the rest, in order, for later blocks", () => {
    const params: ChainParams = { ...tinyParams, accumulateGasPerBlock: 1_500_000n };
    const chain = new Chain(params);
    const g0 = guarantee(params, validators, chain.report(0, 1n), 1);
    const g1 = guarantee(params, validators, chain.report(1, 10n), 1);
    chain.import(chain.block(1, [g0, g1]));
    const both = chain.import(chain.block(2, [], chain.assurances([0, 1])));
    expect(both.ok && both.value.available.length).toBe(2);
    expect(both.ok && both.value.accumulation.accumulatedPackages.length).toBe(1); // 1e6 + 1e6 > 1.5e6
    expect(chain.counter()).toBe(1n);
    expect(new StateComponents(chain.state, params).accumulationQueue()).toHaveLength(1);
    const next = chain.import(chain.block(3));
    expect(next.ok && next.value.accumulation.accumulatedPackages.length).toBe(1);
    expect(chain.counter()).toBe(11n);
  });

  it("gives the same state root for the same blocks (determinism)", () => {
    const a = new Chain();
    const b = new Chain();
    const report = a.report(0, 3n);
    const blocks: Block[] = [];
    blocks.push(a.block(1, [guarantee(tinyParams, validators, report, 1)]));
    a.import(blocks[0]!);
    blocks.push(a.block(2, [], a.assurances([0])));
    a.import(blocks[1]!);
    for (const block of blocks) expect(b.import(block).ok).toBe(true);
    expect(toHex(b.state.root())).toBe(toHex(a.state.root()));
    expect(COUNTER_CODE_HASH).toEqual(nativeCodeHash("counter"));
  });

  it("calls always-accumulate services (χ_Z) in every block, with their gas, and no others without results", () => {
    const services = counterGenesis();
    services[1] = { ...services[1]!, alwaysAccumulateGas: 123_000n };
    const chain = new Chain(tinyParams, services);
    expect(new StateComponents(chain.state, tinyParams).alwaysAccumulate()).toEqual([{ serviceId: 2, gas: 123_000n }]);
    for (const slot of [1, 2, 3]) {
      const result = chain.import(chain.block(slot));
      expect(result.ok && result.value.accumulation.calls.map((c) => [c.serviceId, c.items, c.failure])).toEqual([[2, 0, null]]);
      expect(new StateComponents(chain.state, tinyParams).serviceAccount(2)!.lastAccumulation).toBe(slot);
      expect(new StateComponents(chain.state, tinyParams).serviceAccount(COUNTER_SERVICE_ID)!.lastAccumulation).toBe(0);
    }
    // Without χ_Z, an empty block calls nobody.
    const plain = new Chain();
    const result = plain.import(plain.block(1));
    expect(result.ok && result.value.accumulation.calls).toEqual([]);
  });
});

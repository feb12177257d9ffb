/**
 * wifi-billing in the embedded node, with the built-in genesis `jamgate start` runs: registrations,
 * a top-up, a router and a session's usage go through refine, availability and accumulate as work
 * packages, and the accounts read back through the node's serviceValue are billed as the service's
 * unit tests say. Checks the service module loads, its gas limits suffice, and χ_Z runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signingBytes } from "../../devices/envelope.ts";
import { encodeUsageBody } from "../../devices/wifi.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { type JamNode, REFINE_CAP_MS_DEFAULT } from "../../node/node.ts";
import { openTestNode, packageFor, submitterKey, waitForStatus } from "../../node/testing/fixtures.ts";
import { builtinServices, WIFI_SERVICE } from "../../gateway/genesis.ts";
import { realSides, WifiWorld } from "./testing.ts";
import {
  accountKey,
  decodeAccount,
  decodeFees,
  decodeRouter,
  feesKey,
  PROTOCOL_FEE_PPM,
  routerKey,
  WIFI_SERVICE_NAME,
  wifiActionsGas,
  wifiEnvelopesGas,
  wifiRegistrationsGas,
} from "./types.ts";

const { crypto, deviceSide } = realSides({ hash, verifyEd25519, keyPairFromSeed, signEd25519, signingBytes, encodeUsageBody });

let node: JamNode;

beforeAll(async () => {
  // The node's default refine cap: the test fixture's 2 s can be too short for a refine thread's
  // first load of the service module on a machine busy with other tests.
  node = await openTestNode({ services: builtinServices([submitterKey.publicKey]), refineTimeoutMs: REFINE_CAP_MS_DEFAULT });
  node.start();
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

/** Submits one item to wifi-billing and waits until its package is accumulated. */
async function settle(payload: Uint8Array, accumulateGasLimit: bigint): Promise<void> {
  const item = { serviceId: WIFI_SERVICE.id, codeHash: nativeCodeHash(WIFI_SERVICE_NAME), payload, refineGasLimit: 100_000_000n, accumulateGasLimit };
  const pkg = await packageFor(node, [item]);
  await node.submitWorkPackage(0, pkg.bytes, []);
  const status = await waitForStatus(node, pkg.hash, ["accumulated"], 60_000);
  if (status.kind !== "accumulated") throw new Error(`package ${status.kind}: ${JSON.stringify(status)}`);
}

async function value(key: Uint8Array): Promise<Uint8Array> {
  const best = await node.bestBlock();
  const v = await node.serviceValue(best.headerHash, WIFI_SERVICE.id, key);
  if (v === null) throw new Error("no value");
  return v;
}

describe("wifi-billing in the node", () => {
  it("registers, tops up, bills a session and pays the owner less the fee", async () => {
    // The world builds the payloads; the node, not the world's in-memory host, runs them.
    const world = new WifiWorld(crypto, deviceSide);
    const owner = world.party("owner");
    const client = world.party("client");
    const router = world.party("router");
    await settle(world.registrations({ party: owner, kind: "client" }, { party: client, kind: "client" }), wifiRegistrationsGas(2));
    await settle(
      world.actionsPayload(
        { actionId: world.actionId(), type: "topup", account: owner.id, amountMicros: 1_000n },
        { actionId: world.actionId(), type: "topup", account: client.id, amountMicros: 2_000_000n },
      ),
      wifiActionsGas(2),
    );
    await settle(
      world.registrations({ party: router, kind: "router", router: { owner: owner.id, priceMicrosPerGb: 500_000n, stakeMicros: 1_000n, name: "node test" } }),
      wifiRegistrationsGas(1),
    );
    expect(decodeRouter(await value(routerKey(router.id)))).toMatchObject({ ok: true, value: { status: "active", stakeMicros: 1_000n } });
    const s = world.session(router, client);
    const records = [s.update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }), s.update({ inputOctets: 2_000_000_000n, outputOctets: 0n, seconds: 60 })];
    await settle(world.envelopes(...records), wifiEnvelopesGas(1, records.length));
    const amount = 1_000_000n; // 2 GB at 0.50
    const fee = (amount * BigInt(PROTOCOL_FEE_PPM)) / 1_000_000n;
    expect(decodeAccount(await value(accountKey(client.id)))).toMatchObject({ ok: true, value: { balanceMicros: 2_000_000n - amount } });
    expect(decodeAccount(await value(accountKey(owner.id)))).toMatchObject({ ok: true, value: { balanceMicros: amount - fee, lockedMicros: 1_000n } });
    expect(decodeFees(await value(feesKey))).toEqual({ ok: true, value: fee });
  }, 120_000);
});

/**
 * The node as a user runs it: `jamgate node start` in its own process, driven over the JIP-2
 * WebSocket, killed with SIGKILL, started again on the same data dir.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TELEMETRY_SERVICE } from "../gateway/genesis.ts";
import { encodeRegistrationsItem } from "../services/telemetry/payload.ts";
import { decodeStats, STATS_KEY } from "../services/telemetry/storage.ts";
import { nativeCodeHash } from "./chain/genesis.ts";
import { tinyParams } from "./chain/params.ts";
import { keyPairFromSeed } from "./crypto/ed25519.ts";
import { bytesEqual, toHex } from "./codec/jam.ts";
import { buildWorkPackage } from "./intake/builder.ts";
import { RpcClient } from "./rpc/client.ts";
import { freePort } from "./testing/ports.ts";
import { runCli, type RunningCli } from "../scripts/testing/process.ts";
import { tempDir, waitForStatus } from "./testing/fixtures.ts";

const processes: RunningCli[] = [];
const clients: RpcClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
});

/** The key the test's chain authorizes (as a gateway's would be). */
const SUBMITTER = keyPairFromSeed(new Uint8Array(32).fill(7));

async function startNode(dataDir: string, port: number, slotMs: number, authorize = true): Promise<RpcClient> {
  const cli = runCli([
    "node",
    "start",
    "--data-dir",
    dataDir,
    "--rpc-port",
    String(port),
    "--slot-ms",
    String(slotMs),
    ...(authorize ? ["--authorize", toHex(SUBMITTER.publicKey)] : []),
  ]);
  processes.push(cli);
  await cli.waitFor(/"msg":"node started"/);
  const client = await RpcClient.connect(`ws://127.0.0.1:${port}`, { token: readFileSync(join(dataDir, "rpc-token"), "utf8").trim() });
  clients.push(client);
  return client;
}

/** A package registering `count` new meters on the telemetry service. */
async function registrationPackage(api: RpcClient, first: number, count = 1) {
  const best = await api.bestBlock();
  const stateRoot = await api.stateRoot(best.headerHash);
  const records = Array.from({ length: count }, (_, i) => ({
    publicKey: keyPairFromSeed(new Uint8Array(32).fill(100 + first + i)).publicKey,
    kind: "meter" as const,
  }));
  return buildWorkPackage(tinyParams, {
    signer: SUBMITTER,
    anchor: { headerHash: best.headerHash, stateRoot, slot: best.slot },
    items: [
      {
        serviceId: TELEMETRY_SERVICE.id,
        codeHash: nativeCodeHash(TELEMETRY_SERVICE.name),
        payload: encodeRegistrationsItem(records),
        refineGasLimit: 10_000_000n,
        accumulateGasLimit: 1_000_000n,
      },
    ],
  });
}

const lastLoggedHash = (hex: string) => Uint8Array.from(Buffer.from(hex, "hex"));

/** Devices the telemetry service has registered, at `headerHash`. */
async function devicesRegistered(api: RpcClient, headerHash: Uint8Array): Promise<bigint> {
  const value = await api.serviceValue(headerHash, TELEMETRY_SERVICE.id, STATS_KEY);
  if (value === null) return 0n;
  const stats = decodeStats(value);
  if (!stats.ok) throw new Error(stats.error);
  return stats.value.devicesRegistered;
}

describe("jamgate node start", () => {
  it("accumulates packages submitted over WebSocket, survives SIGKILL with the same chain, and replays it", async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const api = await startNode(dataDir, port, 200);
    // The node runs on a thread of its own, the RPC server on the main one (whose OS id is the pid).
    const started = JSON.parse(await processes[0]!.waitFor(/"msg":"node started"/)) as { nodeThreads: number[] };
    expect(started.nodeThreads.length).toBeGreaterThan(1);
    expect(started.nodeThreads).not.toContain(processes[0]!.child.pid);

    const genesisRoot = await api.stateRoot((await api.bestBlock()).headerHash);
    for (const [first, count] of [
      [0, 5],
      [5, 6],
    ] as const) {
      const pkg = await registrationPackage(api, first, count);
      expect(await api.submitWorkPackage(0, pkg.bytes, [])).toEqual(pkg.hash);
      expect((await waitForStatus(api, pkg.hash, ["accumulated"], 15_000)).kind).toBe("accumulated");
    }
    const afterWork = await api.bestBlock();
    expect(await devicesRegistered(api, afterWork.headerHash)).toBe(11n);
    expect(bytesEqual(await api.stateRoot(afterWork.headerHash), genesisRoot)).toBe(false);

    // Kill right after a block is announced (it is persisted and logged before it is announced).
    await new Promise<void>((resolve) => {
      void api.subscribeBestBlock((b) => {
        if (b.slot > afterWork.slot) resolve();
      });
    });
    const first = processes[0]!;
    first.child.kill("SIGKILL");
    expect((await first.exited).signal).toBe("SIGKILL");
    const blockLines = first
      .output()
      .split("\n")
      .filter((l) => l.includes('"msg":"block"'));
    const lastLogged = JSON.parse(blockLines.at(-1)!) as { slot: number; hash: string; stateRoot: string };

    // Restart with a slot so long that no block is authored: the best block is what was on disk.
    const still = await startNode(dataDir, port, 3_600_000);
    const resumed = await still.bestBlock();
    // A block is committed, then logged, then announced: the kill may land after the next block's
    // commit and before its line, so the chain on disk is the last logged block or the one after.
    expect([lastLogged.slot, lastLogged.slot + 1]).toContain(resumed.slot);
    if (resumed.slot === lastLogged.slot) {
      expect({ hash: toHex(resumed.headerHash), stateRoot: toHex(await still.stateRoot(resumed.headerHash)) }).toEqual({
        hash: lastLogged.hash,
        stateRoot: lastLogged.stateRoot,
      });
    } else {
      const logged = await still.stateRoot(lastLoggedHash(lastLogged.hash));
      expect(toHex(logged)).toBe(lastLogged.stateRoot);
    }
    expect(await devicesRegistered(still, resumed.headerHash)).toBe(11n);
    processes[1]!.child.kill("SIGKILL");
    await processes[1]!.exited;

    // Started again without --authorize: the genesis's keys are the ones recorded at its first start.
    const restarted = await startNode(dataDir, port, 200, false);
    // And it keeps going: new blocks, new work.
    const pkg = await registrationPackage(restarted, 11);
    await restarted.submitWorkPackage(1, pkg.bytes, []);
    expect((await waitForStatus(restarted, pkg.hash, ["accumulated"], 15_000)).kind).toBe("accumulated");
    const finalBest = await restarted.bestBlock();
    const finalRoot = await restarted.stateRoot(finalBest.headerHash);

    // Stop it, then replay the whole chain from genesis: every root matches, ending at the best block's.
    processes[2]!.child.kill("SIGTERM");
    expect((await processes[2]!.exited).code).toBe(0);
    const replay = runCli(["node", "replay", "--data-dir", dataDir]);
    processes.push(replay);
    const line = await replay.waitFor(/"blocks":\d+/);
    const result = JSON.parse(line) as { blocks: number; stateRoot: string };
    expect(result.blocks).toBeGreaterThanOrEqual(finalBest.slot);
    const lastBlock = JSON.parse(
      processes[2]!
        .output()
        .split("\n")
        .filter((l) => l.includes('"msg":"block"'))
        .at(-1)!,
    ) as { slot: number; stateRoot: string };
    expect(result.blocks).toBe(lastBlock.slot);
    expect(result.stateRoot).toBe(lastBlock.stateRoot);
    expect(lastBlock.slot).toBeGreaterThanOrEqual(finalBest.slot);
    if (lastBlock.slot === finalBest.slot) expect(lastBlock.stateRoot).toBe(toHex(finalRoot));
    expect((await replay.exited).code).toBe(0);
  }, 90_000);

  it("a new chain needs --authorize; a started one keeps its keys (another is JG_ERR_GENESIS); a key can be a gateway's data dir", async () => {
    const dataDir = tempDir();
    const bare = runCli(["node", "start", "--data-dir", dataDir, "--rpc-port", "0"]);
    processes.push(bare);
    expect((await bare.exited).code).toBe(2);
    expect(bare.output()).toMatch(/JG_ERR_CLI_ARGUMENT: a new chain needs --authorize/);
    // A jamgate start data dir stands for its gateway key.
    const gatewayDir = tempDir();
    writeFileSync(join(gatewayDir, "gateway-key"), `${"07".repeat(32)}\n`, { mode: 0o600 });
    const first = runCli(["node", "start", "--data-dir", dataDir, "--rpc-port", "0", "--slot-ms", "3600000", "--authorize", gatewayDir]);
    processes.push(first);
    const started = JSON.parse(await first.waitFor(/"msg":"node started"/)) as { authorizedKeys: string[] };
    expect(started.authorizedKeys).toEqual([toHex(SUBMITTER.publicKey)]);
    expect(readFileSync(join(dataDir, "authorized-keys"), "utf8")).toBe(`${toHex(SUBMITTER.publicKey)}\n`);
    expect(statSync(join(dataDir, "rpc-token")).mode & 0o777).toBe(0o600);
    first.child.kill("SIGTERM");
    expect((await first.exited).code).toBe(0);
    const other = runCli(["node", "start", "--data-dir", dataDir, "--rpc-port", "0", "--authorize", "ab".repeat(32)]);
    processes.push(other);
    expect((await other.exited).code).toBe(1);
    expect(other.output()).toMatch(/JG_ERR_GENESIS: the chain in .* authorized/);
  }, 60_000);

  it("refuses bad flags with a coded error and a non-zero exit", async () => {
    for (const args of [
      ["--slot-ms", "abc"],
      ["--rpc-port", "70000"],
      ["--chain", "huge"],
    ]) {
      const cli = runCli(["node", "start", "--data-dir", tempDir(), ...args]);
      processes.push(cli);
      const { code } = await cli.exited;
      expect(code, args.join(" ")).not.toBe(0);
      expect(cli.output()).toMatch(args[0] === "--chain" ? /invalid.*huge|Allowed choices/ : /JG_ERR_CLI_ARGUMENT/);
    }
  });
});

/**
 * The node as a user runs it: `jamgate node start` in its own process, driven over the JIP-2
 * WebSocket, killed with SIGKILL, started again on the same data dir.
 */
import { afterEach, describe, expect, it } from "vitest";
import { COUNTER_SERVICE, DEV_SUBMITTER_KEY } from "../scripts/genesis.ts";
import { COUNTER_KEY, counterPayload, readU64 } from "../services/counter/types.ts";
import { tinyParams } from "./chain/params.ts";
import { bytesEqual, toHex } from "./codec/jam.ts";
import { buildWorkPackage } from "./intake/builder.ts";
import { RpcClient } from "./rpc/client.ts";
import { freePort, runCli, type RunningCli } from "./testing/process.ts";
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

async function startNode(dataDir: string, port: number, slotMs: number): Promise<RpcClient> {
  const cli = runCli(["node", "start", "--data-dir", dataDir, "--rpc-port", String(port), "--slot-ms", String(slotMs)]);
  processes.push(cli);
  await cli.waitFor(/"msg":"node started"/);
  const client = await RpcClient.connect(`ws://127.0.0.1:${port}`);
  clients.push(client);
  return client;
}

async function incrementPackage(api: RpcClient, amount: bigint) {
  const best = await api.bestBlock();
  const stateRoot = await api.stateRoot(best.headerHash);
  return buildWorkPackage(tinyParams, {
    signer: DEV_SUBMITTER_KEY,
    anchor: { headerHash: best.headerHash, stateRoot, slot: best.slot },
    items: [{ serviceId: COUNTER_SERVICE.id, codeHash: COUNTER_SERVICE.codeHash, payload: counterPayload.increment(amount), refineGasLimit: 10_000_000n, accumulateGasLimit: 1_000_000n }],
  });
}

describe("jamgate node start", () => {
  it("accumulates packages submitted over WebSocket, survives SIGKILL with the same chain, and replays it", async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const api = await startNode(dataDir, port, 200);

    const genesisRoot = await api.stateRoot((await api.bestBlock()).headerHash);
    for (const amount of [5n, 6n]) {
      const pkg = await incrementPackage(api, amount);
      expect(await api.submitWorkPackage(0, pkg.bytes, [])).toEqual(pkg.hash);
      expect((await waitForStatus(api, pkg.hash, ["accumulated"], 15_000)).kind).toBe("accumulated");
    }
    const afterWork = await api.bestBlock();
    expect(readU64(await api.serviceValue(afterWork.headerHash, COUNTER_SERVICE.id, COUNTER_KEY))).toBe(11n);
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
    const blockLines = first.output().split("\n").filter((l) => l.includes('"msg":"block"'));
    const lastLogged = JSON.parse(blockLines.at(-1)!) as { slot: number; hash: string; stateRoot: string };

    // Restart with a slot so long that no block is authored: the best block is what was on disk.
    const still = await startNode(dataDir, port, 3_600_000);
    const resumed = await still.bestBlock();
    expect({ slot: resumed.slot, hash: toHex(resumed.headerHash), stateRoot: toHex(await still.stateRoot(resumed.headerHash)) }).toEqual({
      slot: lastLogged.slot,
      hash: lastLogged.hash,
      stateRoot: lastLogged.stateRoot,
    });
    expect(readU64(await still.serviceValue(resumed.headerHash, COUNTER_SERVICE.id, COUNTER_KEY))).toBe(11n);
    processes[1]!.child.kill("SIGKILL");
    await processes[1]!.exited;

    const restarted = await startNode(dataDir, port, 200);
    // And it keeps going: new blocks, new work.
    const pkg = await incrementPackage(restarted, 1n);
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
    const lastBlock = JSON.parse(processes[2]!.output().split("\n").filter((l) => l.includes('"msg":"block"')).at(-1)!) as { slot: number; stateRoot: string };
    expect(result.blocks).toBe(lastBlock.slot);
    expect(result.stateRoot).toBe(lastBlock.stateRoot);
    expect(lastBlock.slot).toBeGreaterThanOrEqual(finalBest.slot);
    if (lastBlock.slot === finalBest.slot) expect(lastBlock.stateRoot).toBe(toHex(finalRoot));
    expect((await replay.exited).code).toBe(0);
  }, 90_000);

  it("refuses bad flags with a coded error and a non-zero exit", async () => {
    for (const args of [["--slot-ms", "abc"], ["--rpc-port", "70000"], ["--chain", "huge"]]) {
      const cli = runCli(["node", "start", "--data-dir", tempDir(), ...args]);
      processes.push(cli);
      const { code } = await cli.exited;
      expect(code, args.join(" ")).not.toBe(0);
      expect(cli.output()).toMatch(args[0] === "--chain" ? /invalid.*huge|Allowed choices/ : /JG_ERR_CLI_ARGUMENT/);
    }
  });
});

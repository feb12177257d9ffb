/**
 * The edges under attack, on loopback: what an outside review tried against `jamgate start` with
 * its defaults, repeated with every attack bounded in count, bytes and time, and measured from
 * outside (the target's memory from /proc, who keeps a socket and how long).
 *
 *   node --import tsx bench/attack.ts [--checkout DIR] [--hold-s 130] [--connect-mib 200] [--http-sockets 1100]
 *
 * The target is `jamgate start` of --checkout (default: this one), in its own process, with a fresh
 * data dir and free ports, so the same script measures an older checkout (a git worktree with this
 * one's node_modules linked) for the figures before a change. Attacks, in order:
 *
 *   1. RPC: a work package for the counter test service, signed with the development key derived
 *      from the public seed "jamgate-dev-submitter", sent without a credential.
 *   2. RPC: 256 idle WebSockets without a token; then one more without a token, and one with the
 *      operator token (the credential the gateway would use); how long the idle ones are held.
 *   3. RPC: ten WebSocket frames declaring 19 MiB, half their payload sent: the target's RSS.
 *   4. MQTT: four unauthenticated sockets, each a CONNECT declaring 256 MiB and then up to
 *      --connect-mib MiB of its body: the target's RSS at its peak and 2 s after, and how much of
 *      the body each socket could send before it was closed.
 *   5. MQTT: a registered device's PUBLISH declaring 10 MB: bytes taken before the socket closed.
 *   6. An idle TCP socket on the HTTP, MQTT-over-WebSocket and RPC ports, and a slowloris client
 *      (one header byte a second) on the HTTP port: how long each is held, up to --hold-s.
 *   7. --http-sockets idle TCP sockets on the HTTP port: how many are held.
 *
 * Results are one table; a "—" is an attack the target's version has no surface for.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "mqtt-packet";
import { WebSocket } from "ws";
import { generateDeviceKey, mqttPassword } from "../devices/keys.ts";
import { codeOf } from "../node/api.ts";
import { nativeCodeHash } from "../node/chain/genesis.ts";
import { tinyParams } from "../node/chain/params.ts";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { buildWorkPackage } from "../node/intake/builder.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { counterPayload } from "../node/testing/counter/types.ts";
import { fixedHeader } from "../gateway/testing/mqtt-bytes.ts";
import { parseFlags } from "./lib/args.ts";
import { gitRevision } from "./lib/proc.ts";
import { fmt, machine, table } from "./lib/stats.ts";

const flags = parseFlags(
  "bench/attack.ts",
  "The edges under attack, on loopback: memory and connections an unauthenticated or half-authenticated client can take.",
  {
    checkout: { kind: "string", default: null, valueName: "DIR", help: "the jamgate checkout to attack (default: this one)" },
    "hold-s": { kind: "number", default: 130, help: "longest wait for the target to close an idle or slow socket, s" },
    "connect-mib": { kind: "number", default: 200, help: "body bytes each of the four oversize CONNECTs sends at most, MiB" },
    "http-sockets": { kind: "number", default: 1100, help: "idle sockets opened on the HTTP port" },
  },
);
const CHECKOUT = flags.checkout ?? new URL("..", import.meta.url).pathname;
const HOLD_MS = flags["hold-s"] * 1000;
const MIB = 1024 * 1024;

const rows: string[][] = [];
const row = (attack: string, measure: string, value: string) => {
  rows.push([attack, measure, value]);
  process.stderr.write(`${attack}: ${measure}: ${value}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The target.

const dataDir = mkdtempSync(join(tmpdir(), "jamgate-attack-"));
const ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort(), rpc: await freePort() };
const target = spawn(
  process.execPath,
  [
    join(CHECKOUT, "scripts/jamgate.mjs"),
    "start",
    "--data-dir",
    dataDir,
    "--slot-ms",
    "1000",
    "--mqtt-port",
    String(ports.mqtt),
    "--ws-port",
    String(ports.ws),
    "--http-port",
    String(ports.http),
    "--rpc-port",
    String(ports.rpc),
  ],
  {
    stdio: ["ignore", "pipe", "pipe"],
  },
);
let targetOutput = "";
target.stdout.on("data", (c: Buffer) => (targetOutput += c.toString()));
target.stderr.on("data", (c: Buffer) => (targetOutput += c.toString()));
const stopTarget = () => {
  if (target.exitCode === null) target.kill("SIGKILL");
};
process.on("exit", () => {
  stopTarget();
  rmSync(dataDir, { recursive: true, force: true });
});
for (let i = 0; i < 600 && !targetOutput.includes('"msg":"jamgate started"'); i++) {
  if (target.exitCode !== null) throw new Error(`the target exited: ${targetOutput}`);
  await sleep(100);
}
if (!targetOutput.includes('"msg":"jamgate started"')) throw new Error(`the target did not start: ${targetOutput.slice(-2000)}`);
const operatorToken = readFileSync(join(dataDir, "operator-token"), "utf8").trim();

/** The target's resident memory, MiB: all of it, and its anonymous part (what a client's bytes would be held in). */
function rssMiB(): { rss: number; anon: number } {
  const status = readFileSync(`/proc/${target.pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: kib("VmRSS") / 1024, anon: kib("RssAnon") / 1024 };
}

/** A raw TCP socket; `closedAt` is set when the target closes it. */
interface Raw {
  readonly socket: Socket;
  readonly openedAt: number;
  closedAt: number | null;
  received: Buffer[];
}

async function raw(port: number): Promise<Raw> {
  const socket = connect(port, "127.0.0.1");
  const r: Raw = { socket, openedAt: performance.now(), closedAt: null, received: [] };
  socket.on("data", (c: Buffer) => r.received.push(c));
  socket.on("error", () => {});
  socket.on("close", () => (r.closedAt ??= performance.now()));
  await new Promise<void>((resolve) => {
    socket.once("connect", () => resolve());
    socket.once("close", () => resolve());
  });
  return r;
}

/** Waits until every socket is closed or `ms` has passed. */
async function waitClosed(sockets: readonly Raw[], ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (sockets.some((s) => s.closedAt === null) && performance.now() < until) await sleep(200);
}

const heldFor = (r: Raw) => (r.closedAt === null ? `held > ${fmt(HOLD_MS / 1000)} s` : `closed after ${fmt((r.closedAt - r.openedAt) / 1000, 1)} s`);

/** Writes `total` bytes in 1 MiB pieces while the socket stays open; resolves with what it wrote. */
async function pump(socket: Socket, total: number): Promise<number> {
  const piece = Buffer.alloc(MIB, 0x61);
  let written = 0;
  while (written < total && !socket.destroyed && socket.writable) {
    const n = Math.min(piece.length, total - written);
    const ok = socket.write(n === piece.length ? piece : piece.subarray(0, n));
    written += n;
    if (!ok)
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.once("drain", done);
        socket.once("close", done);
      });
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// 1. A state change through the RPC with the public development key, without a credential.
{
  const devKey = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-dev-submitter")));
  const api = await RpcClient.connect(`ws://127.0.0.1:${ports.rpc}`);
  const best = await api.bestBlock();
  const pkg = buildWorkPackage(tinyParams, {
    signer: devKey,
    anchor: { headerHash: best.headerHash, stateRoot: await api.stateRoot(best.headerHash), slot: best.slot },
    items: [
      {
        serviceId: 1,
        codeHash: nativeCodeHash("counter"),
        payload: counterPayload.increment(42n),
        refineGasLimit: 10_000_000n,
        accumulateGasLimit: 1_000_000n,
      },
    ],
  });
  const outcome = await api.submitWorkPackage(0, pkg.bytes, []).then(
    () => "accepted",
    (e: unknown) => `refused ${codeOf(e)}`,
  );
  row("1 RPC submit, public dev key, no credential", "answer", outcome);
  await api.close();
}

// ---------------------------------------------------------------------------------------------
// 2. 256 idle WebSockets without a token.
const idleSockets: WebSocket[] = [];
{
  const open = (headers: Record<string, string> = {}) =>
    new Promise<WebSocket | string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${ports.rpc}`, { headers });
      ws.once("open", () => resolve(ws));
      ws.once("error", (e) => resolve(e.message));
      ws.once("unexpected-response", (_req, res) => resolve(`HTTP ${res.statusCode}`));
    });
  const results = await Promise.all(Array.from({ length: 256 }, () => open()));
  for (const r of results) if (typeof r !== "string") idleSockets.push(r);
  row("2 RPC 256 idle WebSockets, no token", "opened", `${idleSockets.length} of 256`);
  const extra = await open();
  row("2 RPC 256 idle WebSockets, no token", "one more, no token", typeof extra === "string" ? extra : "opened");
  if (typeof extra !== "string") extra.terminate();
  const withToken = await open({ authorization: `Bearer ${operatorToken}` });
  row("2 RPC 256 idle WebSockets, no token", "one with the operator token", typeof withToken === "string" ? withToken : "opened");
  if (typeof withToken !== "string") withToken.terminate();
  const openedAt = performance.now();
  const closedAt = new Map<WebSocket, number>();
  for (const ws of idleSockets) ws.once("close", () => closedAt.set(ws, performance.now()));
  const until = performance.now() + HOLD_MS;
  while (closedAt.size < idleSockets.length && performance.now() < until) await sleep(500);
  row(
    "2 RPC 256 idle WebSockets, no token",
    "held",
    closedAt.size < idleSockets.length
      ? `${idleSockets.length - closedAt.size} held > ${fmt(HOLD_MS / 1000)} s`
      : `all closed within ${fmt((Math.max(...closedAt.values()) - openedAt) / 1000, 1)} s`,
  );
  for (const ws of idleSockets) ws.terminate();
  await sleep(500);
}

// ---------------------------------------------------------------------------------------------
// 3. Ten half-sent 19 MiB frames.
{
  const before = rssMiB();
  const sockets: WebSocket[] = [];
  let closedWith1009 = 0;
  for (let i = 0; i < 10; i++) {
    const ws = await new Promise<WebSocket | null>((resolve) => {
      const w = new WebSocket(`ws://127.0.0.1:${ports.rpc}`);
      w.once("open", () => resolve(w));
      w.once("error", () => resolve(null));
    });
    if (ws === null) continue;
    ws.on("error", () => {});
    ws.on("close", (code) => {
      if (code === 1009) closedWith1009++;
    });
    sockets.push(ws);
    const header = Buffer.alloc(14);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(19 * MIB), 2);
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.write(header); // the mask key: the first 4 bytes of what follows (zeros)
    await pump(socket, (19 * MIB) / 2);
  }
  await sleep(2_000);
  const after = rssMiB();
  row("3 RPC ten half-sent 19 MiB frames", "target RSS / anonymous, MiB", `+${fmt(after.rss - before.rss)} / +${fmt(after.anon - before.anon)}`);
  row("3 RPC ten half-sent 19 MiB frames", "closed by the target (1009)", `${closedWith1009} of ${sockets.length}`);
  for (const ws of sockets) ws.terminate();
  await sleep(1_000);
}

// ---------------------------------------------------------------------------------------------
// 4. Four unauthenticated 256 MiB CONNECTs.
{
  const before = rssMiB();
  let peak = before;
  const sampler = setInterval(() => {
    const now = rssMiB();
    if (now.anon > peak.anon) peak = now;
  }, 50);
  const sockets = await Promise.all(Array.from({ length: 4 }, () => raw(ports.mqtt)));
  const sent = await Promise.all(
    sockets.map((s) => {
      s.socket.write(fixedHeader(1, 268_435_455));
      return pump(s.socket, flags["connect-mib"] * MIB);
    }),
  );
  await sleep(2_000);
  clearInterval(sampler);
  const after = rssMiB();
  row(
    "4 MQTT four 256 MiB CONNECTs, unauthenticated",
    "target anonymous RSS, peak / 2 s after, MiB",
    `+${fmt(peak.anon - before.anon)} / +${fmt(after.anon - before.anon)}`,
  );
  row("4 MQTT four 256 MiB CONNECTs, unauthenticated", "body sent before close, MiB each", sent.map((b) => fmt(b / MIB)).join(", "));
  row("4 MQTT four 256 MiB CONNECTs, unauthenticated", "sockets closed by the target", `${sockets.filter((s) => s.closedAt !== null).length} of 4`);
  for (const s of sockets) s.socket.destroy();
}

// ---------------------------------------------------------------------------------------------
// 5. A registered device's 10 MB PUBLISH.
{
  const key = generateDeviceKey();
  const registered = await fetch(`http://127.0.0.1:${ports.http}/v1/devices`, {
    method: "POST",
    headers: { authorization: `Bearer ${operatorToken}`, "content-type": "application/json" },
    body: JSON.stringify({ publicKey: Buffer.from(key.publicKey).toString("hex"), kind: "meter" }),
  });
  if (registered.status !== 202) throw new Error(`registration: HTTP ${registered.status}`);
  for (let i = 0; i < 60; i++) {
    const view = (await (
      await fetch(`http://127.0.0.1:${ports.http}/v1/devices/${key.deviceId}`, { headers: { authorization: `Bearer ${operatorToken}` } })
    ).json()) as { status?: string };
    if (view.status === "registered") break;
    await sleep(500);
  }
  const s = await raw(ports.mqtt);
  s.socket.write(
    generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: true,
      clientId: key.deviceId,
      keepalive: 60,
      username: key.deviceId,
      password: Buffer.from(mqttPassword(key, Date.now() + 600_000)),
    }),
  );
  for (let i = 0; i < 100 && Buffer.concat(s.received).length < 4; i++) await sleep(50);
  const connack = Buffer.concat(s.received).subarray(0, 4);
  s.socket.write(Buffer.concat([fixedHeader(3, 10_000_000, 2), Buffer.from([0, 1, 0x61, 0, 1])]));
  const sent = await pump(s.socket, 10_000_000);
  await waitClosed([s], 3_000);
  row(
    "5 MQTT 10 MB PUBLISH, registered device",
    "CONNACK / body sent before close, MB",
    `${connack[3] === 0 ? "accepted" : `code ${connack[3]}`} / ${fmt(sent / 1e6, 1)}${s.closedAt === null ? " (still open)" : ""}`,
  );
  s.socket.destroy();
}

// ---------------------------------------------------------------------------------------------
// 6. Idle sockets and slowloris.
{
  const idle = { http: await raw(ports.http), ws: await raw(ports.ws), rpc: await raw(ports.rpc) };
  const slow = await raw(ports.http);
  slow.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  const dribble = setInterval(() => {
    if (!slow.socket.destroyed) slow.socket.write("X");
  }, 1_000);
  await waitClosed([...Object.values(idle), slow], HOLD_MS);
  clearInterval(dribble);
  row("6 idle TCP socket", "HTTP port", heldFor(idle.http));
  row("6 idle TCP socket", "MQTT-over-WebSocket port", heldFor(idle.ws));
  row("6 idle TCP socket", "RPC port", heldFor(idle.rpc));
  row("6 slowloris, one header byte a second", "HTTP port", heldFor(slow));
  for (const s of [...Object.values(idle), slow]) s.socket.destroy();
}

// ---------------------------------------------------------------------------------------------
// 7. Many idle sockets on the HTTP port.
{
  const n = flags["http-sockets"];
  const sockets: Raw[] = [];
  for (let i = 0; i < n; i += 100) sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => raw(ports.http)))));
  await sleep(1_000);
  row(`7 ${n} idle TCP sockets`, "HTTP port: held after 1 s", `${sockets.filter((s) => s.closedAt === null).length} of ${n}`);
  for (const s of sockets) s.socket.destroy();
}

stopTarget();
const revision = existsSync(join(CHECKOUT, ".git")) ? gitRevision() : "?";
console.log(`\njamgate under attack, loopback, target ${CHECKOUT} (${flags.checkout === null ? `this checkout, ${revision}` : "given checkout"})`);
console.log(`machine: ${JSON.stringify(machine())}\n`);
console.log(table(["attack", "measure", "result"], rows));
process.exit(0);

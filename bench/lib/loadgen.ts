/**
 * The load generator of the gateway benchmarks, run as its own process (forked by bench/gateway.ts
 * and bench/idle-connections.ts), so the gateway's event loop never shares a thread with it.
 * Commands over IPC:
 *
 * - prepare: pre-sign every envelope of the run (worker threads, node:crypto) before anything is
 *   timed, so signing does not throttle the offered load, each already wrapped in the QoS 1
 *   PUBLISH frame its device sends (up topic, packet identifier seq % 65,535 + 1); the envelopes
 *   are views into the frames, so memory holds each once. `kind`: meters' "meter.reading"
 *   (default) or Wi-Fi routers' "router.usage" (bench/lib/devices.ts signedUsageEnvelopes);
 * - connect: one client per device (MQTT 3.1.1, clean session, no reconnect), each from a
 *   loopback source address shared by 100 devices, subscribed to its down topics; to `port`, or
 *   spread over `ports` (device k of the range to ports[k % ports.length]: several gateways). `client`:
 *   "raw" (default), bench/lib/raw-mqtt.ts, which publishes by writing the pre-encoded frame; or
 *   "mqtt.js", one MqttClient per device publishing the envelope. Same socket, same packets on the
 *   wire; raw spends less of the CPU the gateway under test shares with it on this machine;
 * - run-open: publish at a fixed total rate (QoS 1), devices in turn, and time each envelope's
 *   PUBACK and receipt; `offset` starts at a later envelope (device after device, seq after seq),
 *   so runs one after the other go on with the seqs the last one left; `outstandingMax` holds
 *   publishing while that many envelopes are published and not yet answered (a receipt or an
 *   error), so a path slower than the rate is offered what it settles plus a bounded backlog;
 * - run-echo: the ceiling on a bare broker: every client subscribed to its own topic keeps a
 *   window of messages in flight, publishing the next when one comes back;
 * - stats, disconnect.
 */
import { availableParallelism } from "node:os";
import { createConnection } from "node:net";
import { Worker } from "node:worker_threads";
import { MqttClient } from "mqtt";
import type { EnvelopeKind } from "../../devices/envelope.ts";
import { decodeDeviceError, decodeReceipts, upTopic } from "../../devices/messages.ts";
import { type BenchDevice, benchDevice, benchToken } from "./devices.ts";
import { mainThreadCpuS, openFilesLimit, processCpuS, serve } from "./proc.ts";
import { publishPayload, RawMqttClient } from "./raw-mqtt.ts";
import { median, percentile } from "./stats.ts";

/** Which MQTT client the simulated devices use (bench/gateway.ts --client): raw-mqtt.ts or mqtt.js. */
const CLIENT_KINDS: readonly string[] = ["raw", "mqtt.js"];

/** What the runs need of one device's connection, over either client. */
interface Link {
  /** Publishes envelope `seq` at QoS 1; `onAck` at its PUBACK (never if the connection closes first). */
  publish(seq: number, onAck: () => void): void;
  readonly connected: boolean;
  end(): Promise<void>;
}

interface Device {
  readonly d: BenchDevice;
  readonly up: string;
  /** By seq: the QoS 1 PUBLISH frames (the raw client writes these as they are). */
  frames: Buffer[];
  /** By seq: the envelopes, views of the payloads inside `frames` (mqtt.js publishes these). */
  envelopes: Buffer[];
  link: Link | null;
}

let devices: Device[] = [];
/** What the devices send (prepare's `kind`). */
let kind: EnvelopeKind = "meter.reading";
let onReceipt: (device: number, seq: number, at: number) => void = () => {};
let onError: (device: number, code: string, seq: number | null) => void = () => {};
let onUp: (device: number, at: number) => void = () => {};

function newDevice(index: number): Device {
  const d = benchDevice(index);
  return { d, up: upTopic(d.deviceId, kind), frames: [], envelopes: [], link: null };
}

/** Devices [from, to), reusing the current list when it is that range and kind. */
function ensureDevices(from: number, to: number): void {
  if (devices.length === to - from && devices[0]?.d.index === from && devices[0].up.endsWith(`/${kind}`)) return;
  devices = Array.from({ length: to - from }, (_, i) => newDevice(from + i));
}

async function prepare(args: Record<string, unknown>) {
  const from = Number(args.from);
  const to = Number(args.to);
  const perDevice = Number(args.perDevice);
  // Routers' usage envelopes are a second apart, as one-reading envelopes would be.
  const readings = Number(args.readings ?? 1);
  const body = args.body === "rows" ? "rows" : "columns";
  if (args.kind !== undefined && args.kind !== "meter.reading" && args.kind !== "router.usage")
    throw new Error(`kind must be meter.reading or router.usage, not ${String(args.kind)}`);
  kind = (args.kind as EnvelopeKind | undefined) ?? "meter.reading";
  const sessionUpdates = Number(args.sessionUpdates ?? 1);
  ensureDevices(from, to);
  const started = performance.now();
  const threads = Math.max(1, Math.min(availableParallelism(), to - from));
  const per = Math.ceil((to - from) / threads);
  // Readings end 10 min before now: the gateway refuses an envelope more than 5 min ahead of its clock (JG_ERR_ENVELOPE_FUTURE).
  const startMs = Date.now() - (perDevice * readings + 600) * 1000;
  const results = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const a = from + t * per;
      const b = Math.min(to, a + per);
      return new Promise<{ a: number; b: number; buffer: ArrayBuffer; offsets: Float64Array }>((resolve, reject) => {
        const w = new Worker(new URL("./sign-worker.mjs", import.meta.url), {
          workerData: { from: a, to: b, perDevice, readings, body, startMs, kind, sessionUpdates },
        });
        w.once("message", (m: { buffer: ArrayBuffer; offsets: Float64Array }) => {
          resolve({ a, b, ...m });
          void w.terminate();
        });
        w.once("error", reject);
      });
    }),
  );
  let bytes = 0;
  const sizes: number[] = [];
  for (const r of results) {
    for (let i = r.a; i < r.b; i++) {
      const dev = devices[i - from]!;
      dev.frames = [];
      dev.envelopes = [];
      for (let s = 0; s < perDevice; s++) {
        const k = (i - r.a) * perDevice + s;
        const start = r.offsets[k]!;
        const end = r.offsets[k + 1]!;
        const frame = Buffer.from(r.buffer, start, end - start);
        const envelope = publishPayload(frame);
        dev.frames.push(frame);
        dev.envelopes.push(envelope);
        bytes += envelope.length;
        if (sizes.length < 10_000) sizes.push(envelope.length);
      }
    }
  }
  return { ms: performance.now() - started, envelopes: (to - from) * perDevice, bytes, envelopeBytesMedian: median(sizes), threads };
}

/** What a device does with a message on its topics: receipts and errors in the gateway run, its own envelopes echoed by the bare broker. */
function onMessage(index: number, topic: string, payload: Buffer): void {
  const at = performance.now();
  if (topic.endsWith("/receipts")) {
    for (const r of decodeReceipts(new Uint8Array(payload)) ?? []) onReceipt(index, r.seq, at);
  } else if (topic.endsWith("/errors")) {
    const e = decodeDeviceError(new Uint8Array(payload));
    onError(index, e?.code ?? "undecodable", e?.seq ?? null);
  } else onUp(index, at);
}

/** Connects `dev` with the raw client and subscribes it to `topic`; null, or what went wrong. */
async function connectRaw(dev: Device, port: number, keepaliveS: number, topic: string): Promise<string | null> {
  const index = devices.indexOf(dev);
  let client: RawMqttClient;
  try {
    client = await RawMqttClient.connect({
      host: "127.0.0.1",
      port,
      localAddress: dev.d.sourceIp,
      clientId: dev.d.deviceId, // the gateway takes a device only under its own id
      username: dev.d.deviceId,
      password: benchToken(dev.d, Date.now() + 3_600_000),
      keepaliveS,
      onMessage: (t, payload) => onMessage(index, t, payload),
    });
  } catch (e) {
    return (e as Error).message;
  }
  dev.link = {
    publish: (seq, onAck) => client.publish(dev.frames[seq]!, onAck),
    get connected() {
      return client.connected;
    },
    end: () => client.end(),
  };
  // As with mqtt.js below: a refused subscription is reported, the connection stays until disconnect.
  return client.subscribe(topic).then(
    () => null,
    (e: Error) => `subscribe: ${e.message}`,
  );
}

/** Connects `dev` with an mqtt.js client and subscribes it to `topic`; null, or what went wrong. */
function connectMqttJs(dev: Device, port: number, keepaliveS: number, topic: string): Promise<string | null> {
  return new Promise((resolve) => {
    const client = new MqttClient(() => createConnection({ host: "127.0.0.1", port, localAddress: dev.d.sourceIp }), {
      clientId: dev.d.deviceId, // the gateway takes a device only under its own id
      username: dev.d.deviceId,
      password: benchToken(dev.d, Date.now() + 3_600_000),
      protocolVersion: 4,
      clean: true,
      keepalive: keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
    });
    const fail = (e: Error) => {
      client.removeAllListeners("connect");
      client.end(true);
      resolve(String(e.message ?? e));
    };
    client.once("error", fail);
    client.once("connect", () => {
      client.removeListener("error", fail);
      client.on("error", () => {});
      dev.link = {
        publish: (seq, onAck) =>
          client.publish(dev.up, dev.envelopes[seq]!, { qos: 1 }, (e) => {
            if (!e) onAck();
          }),
        get connected() {
          return client.connected;
        },
        end: () => client.endAsync(true).catch(() => {}),
      };
      const index = devices.indexOf(dev);
      client.on("message", (t, payload) => onMessage(index, t, payload));
      client.subscribe(topic, { qos: 1 }, (e, granted) => {
        if (e) resolve(`subscribe: ${e.message}`);
        else if (granted?.[0]?.qos === 128) resolve("subscribe refused");
        else resolve(null);
      });
    });
  });
}

async function connect(args: Record<string, unknown>) {
  const from = Number(args.from);
  const to = Number(args.to);
  // append: devices [from, to) join those already connected (the idle benchmark connects in steps).
  let todo: Device[];
  if (args.append === true) {
    todo = Array.from({ length: to - from }, (_, i) => newDevice(from + i));
    devices.push(...todo);
  } else {
    ensureDevices(from, to);
    todo = devices;
  }
  // ports: several gateways' MQTT ports (bench/gateway.ts --gateways 2); device k of the range connects to ports[k % ports.length], so each takes an even share of every second's envelopes.
  const ports = Array.isArray(args.ports) ? args.ports.map(Number) : [Number(args.port)];
  const keepaliveS = Number(args.keepaliveS ?? 60);
  const concurrency = Number(args.concurrency ?? 100);
  const subscribe = String(args.subscribe ?? "down");
  const client = String(args.client ?? "raw");
  if (!CLIENT_KINDS.includes(client)) throw new Error(`client must be ${CLIENT_KINDS.join(" or ")}, not ${client}`);
  const connectOne = client === "raw" ? connectRaw : connectMqttJs;
  const started = performance.now();
  const errors = new Map<string, number>();
  let connected = 0;
  let at = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (at < todo.length) {
        const k = at++;
        const dev = todo[k]!;
        const topic = subscribe === "all" ? `devices/${dev.d.deviceId}/#` : `devices/${dev.d.deviceId}/down/#`;
        const e = await connectOne(dev, ports[k % ports.length]!, keepaliveS, topic);
        if (e === null) connected++;
        else errors.set(e, (errors.get(e) ?? 0) + 1);
      }
    }),
  );
  return { ms: performance.now() - started, client, connected, errors: Object.fromEntries(errors), fdLimit: openFilesLimit() };
}

async function disconnect() {
  await Promise.all(devices.map((d) => d.link?.end()));
  for (const d of devices) d.link = null;
  return null;
}

/** Counts per whole second since `start` of the finite values in `xs`. */
function perSecond(xs: Float64Array, start: number, seconds: number): number[] {
  const out = new Array<number>(seconds).fill(0);
  for (const x of xs) {
    if (!Number.isFinite(x)) continue;
    const s = Math.floor((x - start) / 1000);
    if (s >= 0 && s < seconds) out[s]!++;
  }
  return out;
}

function countIn(xs: Float64Array, a: number, b: number): number {
  let n = 0;
  for (const x of xs) if (x >= a && x < b) n++;
  return n;
}

/** A pause between receipts this long or longer separates one block's receipts from the next's (a block's come out within ~100 ms here). */
const RECEIPT_BURST_GAP_MS = 250;

/**
 * Receipts per second over whole block periods of [a, b): from the first block's receipts that
 * start in the window to the last's, divided by the time between them. Receipts come in one burst
 * a block (a slot's worth, ~5,000 at 5,000/s), so counting them in a fixed window counts 29 or 31
 * bursts in 30 s depending on where the window's edges fall against the blocks: measured, a run
 * with every envelope settled and p99 receipt 2.70 slots counted 4,827/s. Falls back to the fixed
 * window when there are fewer than two bursts (receipts arriving all the time: a backlog).
 */
function settledRate(rcptAt: Float64Array, a: number, b: number): { perS: number; blockAligned: boolean } {
  const times: number[] = [];
  for (const x of rcptAt) if (x >= a - RECEIPT_BURST_GAP_MS && x < b) times.push(x);
  times.sort((x, y) => x - y);
  const starts: number[] = [];
  for (let i = 0; i < times.length; i++) if (times[i]! >= a && (i === 0 || times[i]! - times[i - 1]! >= RECEIPT_BURST_GAP_MS)) starts.push(times[i]!);
  if (starts.length < 2) return { perS: countIn(rcptAt, a, b) / ((b - a) / 1000), blockAligned: false };
  const first = starts[0]!;
  const last = starts.at(-1)!;
  return { perS: countIn(rcptAt, first, last) / ((last - first) / 1000), blockAligned: true };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Open loop: `rate` envelopes/s in total, device after device, for warmupMs + measureMs, from
 * envelope `offset` on (0: every device's seq 0 first); then wait up to drainMs for receipts.
 */
async function runOpen(args: Record<string, unknown>) {
  const rate = Number(args.rate);
  const offset = Number(args.offset ?? 0);
  const outstandingMax = args.outstandingMax === undefined || args.outstandingMax === null ? Number.POSITIVE_INFINITY : Number(args.outstandingMax);
  const warmupMs = Number(args.warmupMs);
  const measureMs = Number(args.measureMs);
  const drainMs = Number(args.drainMs);
  const slotMs = Number(args.slotMs);
  const n = devices.length;
  const perDevice = devices[0]!.envelopes.length;
  if (!Number.isInteger(offset) || offset < 0 || offset >= n * perDevice)
    throw new Error(`offset ${offset} is not an envelope of the ${n * perDevice} prepared`);
  const total = Math.min(n * perDevice - offset, Math.ceil((rate * (warmupMs + measureMs)) / 1000));
  const pubAt = new Float64Array(total).fill(Number.NaN);
  const ackAt = new Float64Array(total).fill(Number.NaN);
  const rcptAt = new Float64Array(total).fill(Number.NaN);
  const errors = new Map<string, number>();
  let duplicates = 0;
  /** Envelopes of this run answered: receipted, or refused on the device's error topic. */
  let answered = 0;
  onReceipt = (device, seq, at) => {
    const m = seq * n + device - offset;
    if (m < 0 || m >= total) return;
    if (Number.isNaN(rcptAt[m]!)) {
      rcptAt[m] = at;
      answered++;
    } else duplicates++;
  };
  /** Envelopes refused on the error topic (their seq named), which no receipt will follow. */
  const refused = new Uint8Array(total);
  onError = (device, code, seq) => {
    errors.set(code, (errors.get(code) ?? 0) + 1);
    answered++;
    const m = seq === null ? -1 : seq * n + device - offset;
    if (m >= 0 && m < total) refused[m] = 1;
  };
  const cpu0 = { main: mainThreadCpuS(), proc: processCpuS() };
  const start = performance.now();
  const endPublish = start + warmupMs + measureMs;
  let next = 0;
  let lateMax = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) / 1000) * rate));
      if (due - next > lateMax) lateMax = due - next;
      while (next < due && next - answered < outstandingMax) {
        const m = next++;
        const dev = devices[(m + offset) % n]!;
        const seq = Math.floor((m + offset) / n);
        pubAt[m] = performance.now();
        dev.link!.publish(seq, () => {
          ackAt[m] = performance.now();
        });
      }
      if (next >= total || now >= endPublish) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const cpu1 = { main: mainThreadCpuS(), proc: processCpuS(), at: performance.now() };
  // Drain: wait for the receipts of everything published and not refused, up to drainMs.
  const drainUntil = performance.now() + drainMs;
  let settledAll = false;
  while (performance.now() < drainUntil) {
    let missing = 0;
    for (let m = 0; m < next; m++) if (Number.isNaN(rcptAt[m]!) && refused[m] === 0) missing++;
    if (missing === 0) {
      settledAll = true;
      break;
    }
    await sleep(100);
  }
  const drainedAt = performance.now();
  const a = start + warmupMs;
  const b = endPublish;
  const measureS = measureMs / 1000;
  const receiptMs: number[] = [];
  const ackMs: number[] = [];
  let inWindow = 0;
  let unsettled = 0;
  let unacked = 0;
  for (let m = 0; m < next; m++) {
    const p = pubAt[m]!;
    if (!(p >= a && p < b)) continue;
    inWindow++;
    const r = rcptAt[m]!;
    const k = ackAt[m]!;
    receiptMs.push(Number.isNaN(r) ? Number.POSITIVE_INFINITY : r - p);
    ackMs.push(Number.isNaN(k) ? Number.POSITIVE_INFINITY : k - p);
    if (Number.isNaN(r)) unsettled++;
    if (Number.isNaN(k)) unacked++;
  }
  const seconds = Math.ceil((drainedAt - start) / 1000);
  const settled = settledRate(rcptAt, a, b);
  // Rates in 5 s windows of the measured part (the ratio's spread).
  const windows: { offered: number; accepted: number; settled: number }[] = [];
  for (let w = a; w + 5_000 <= b + 1; w += 5_000) {
    windows.push({ offered: countIn(pubAt, w, w + 5_000) / 5, accepted: countIn(ackAt, w, w + 5_000) / 5, settled: countIn(rcptAt, w, w + 5_000) / 5 });
  }
  return {
    devices: n,
    rate,
    published: next,
    /** Envelopes of the run receipted (all of it, not only the measured window). */
    receipted: countIn(rcptAt, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY),
    publishLagMax: lateMax,
    measureS,
    offeredPerS: countIn(pubAt, a, b) / measureS,
    acceptedPerS: countIn(ackAt, a, b) / measureS,
    settledPerS: settled.perS,
    settledBlockAligned: settled.blockAligned,
    windows,
    inWindow,
    unsettled,
    unacked,
    settledAll,
    drainS: (drainedAt - cpu1.at) / 1000,
    duplicates,
    errors: Object.fromEntries(errors),
    receiptMs: {
      p50: percentile(receiptMs, 50),
      p99: percentile(receiptMs, 99),
      max: percentile(receiptMs, 100),
      slots: { p50: percentile(receiptMs, 50) / slotMs, p99: percentile(receiptMs, 99) / slotMs },
    },
    ackMs: { p50: percentile(ackMs, 50), p99: percentile(ackMs, 99), max: percentile(ackMs, 100) },
    timeline: { published: perSecond(pubAt, start, seconds), accepted: perSecond(ackAt, start, seconds), settled: perSecond(rcptAt, start, seconds) },
    cpu: { mainCores: (cpu1.main - cpu0.main) / ((cpu1.at - start) / 1000), processCores: (cpu1.proc - cpu0.proc) / ((cpu1.at - start) / 1000) },
  };
}

/** Closed loop on a bare broker: each client keeps `window` messages to itself in flight for warmupMs + measureMs. */
async function runEcho(args: Record<string, unknown>) {
  const warmupMs = Number(args.warmupMs);
  const measureMs = Number(args.measureMs);
  const window = Number(args.window);
  const n = devices.length;
  const start = performance.now();
  const a = start + warmupMs;
  const b = a + measureMs;
  let running = true;
  let delivered = 0;
  let acked = 0;
  const latencies: number[] = [];
  const sentAt: number[][] = devices.map(() => []);
  const counter = new Array<number>(n).fill(0);
  const send = (i: number) => {
    const dev = devices[i]!;
    const now = performance.now();
    sentAt[i]!.push(now);
    const k = counter[i]!;
    counter[i] = k + 1;
    // The raw client's frame k % length carries the same packet identifier each time round; one still in flight (window ≥ envelopes per device) goes out as a copy with a spare identifier (raw-mqtt.ts publish).
    dev.link!.publish(k % dev.envelopes.length, () => {
      const t = performance.now();
      if (t >= a && t < b) acked++;
    });
  };
  onUp = (i, at) => {
    const sent = sentAt[i]!.shift();
    if (at >= a && at < b) {
      delivered++;
      if (sent !== undefined) latencies.push(at - sent);
    }
    if (running) send(i);
  };
  const cpu0 = { main: mainThreadCpuS(), proc: processCpuS() };
  for (let w = 0; w < window; w++) for (let i = 0; i < n; i++) send(i);
  await sleep(warmupMs + measureMs);
  running = false;
  const cpu1 = { main: mainThreadCpuS(), proc: processCpuS(), at: performance.now() };
  await sleep(1_000); // let what is in flight come back before the next run
  onUp = () => {};
  return {
    deliveredPerS: delivered / (measureMs / 1000),
    ackedPerS: acked / (measureMs / 1000),
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    cpu: { mainCores: (cpu1.main - cpu0.main) / ((cpu1.at - start) / 1000), processCores: (cpu1.proc - cpu0.proc) / ((cpu1.at - start) / 1000) },
  };
}

serve({
  prepare,
  connect,
  disconnect,
  "run-open": runOpen,
  "run-echo": runEcho,
  stats() {
    const m = process.memoryUsage();
    return {
      rss: m.rss,
      heapUsed: m.heapUsed,
      cpu: { mainS: mainThreadCpuS(), processS: processCpuS() },
      connected: devices.filter((d) => d.link?.connected === true).length,
    };
  },
  gc() {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().rss;
  },
});

/**
 * A process of bench/fleet.ts's devices (one of several: 100,000 connections do not fit one
 * process's file descriptors, and spreading them spreads their CPU), driven over IPC:
 *
 * - prepare: its devices are every P-th of the fleet from its own (round robin, so every process
 *   publishes through the whole minute); keys and tokens (libsodium, bench/lib/fleet-devices.ts),
 *   and every envelope of the run signed before anything is timed, each inside the QoS 1 PUBLISH
 *   frame its device writes (bench/lib/raw-mqtt.ts `encodePublish`);
 * - connect: one MQTT 3.1.1 connection per device (bench/lib/raw-mqtt.ts: clean session, keepalive,
 *   no reconnect of its own) from its loopback source address to its gateway's port (device g to
 *   the (g mod K)th of K gateways' ports), subscribed to its down topics, at
 *   most `concurrency` connecting at once; a refused or failed connect is tried again after a
 *   second, `retries` times, as a device would after a gateway restart;
 * - run: each device publishes envelope k at `startAtMs` + k minutes + its phase (device g of N
 *   at g/N of the minute), so the fleet offers N/60 envelopes a second evenly; every envelope's
 *   publish, PUBACK and receipt times are kept, and after the last publish the run waits up to
 *   `drainMs` for the receipts still due;
 * - stats (memory, CPU), disconnect.
 */
import { decodeDeviceError, decodeReceipts, upTopic } from "../../devices/messages.ts";
import { type FleetDevice, fleetDevice, fleetEnvelopes, fleetToken } from "./fleet-devices.ts";
import { mainThreadCpuS, openFilesLimit, processCpuS, serve } from "./proc.ts";
import { encodePublish, MESSAGE_ID_MAX, RawMqttClient } from "./raw-mqtt.ts";

interface Device {
  readonly d: FleetDevice;
  /** By seq: the QoS 1 PUBLISH frames. */
  readonly frames: Buffer[];
  client: RawMqttClient | null;
  /** The connection closed under it after it connected (the server cut it). */
  dropped: boolean;
}

let devices: Device[] = [];
/** Envelopes per device this run (prepare's `envelopes`). */
let perDevice = 0;
/** Where a device's envelope times go: index = device position × perDevice + seq. */
let pubAt = new Float64Array(0);
let ackAt = new Float64Array(0);
let rcptAt = new Float64Array(0);
let duplicates = 0;
const errors = new Map<string, number>();
const positionOf = new Map<string, number>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function prepare(args: Record<string, unknown>) {
  const process = Number(args.process);
  const processes = Number(args.processes);
  const fleet = Number(args.fleet);
  perDevice = Number(args.envelopes);
  const readings = Number(args.readings);
  const started = performance.now();
  // Readings end 10 min before now: the gateway refuses an envelope more than 5 min ahead of its clock (JG_ERR_ENVELOPE_FUTURE).
  const startMs = Date.now() - (perDevice * readings + 600) * 1_000;
  devices = [];
  positionOf.clear();
  let bytes = 0;
  for (let g = process; g < fleet; g += processes) {
    const d = fleetDevice(g);
    const topic = upTopic(d.deviceId, "meter.reading");
    const frames = fleetEnvelopes(d, perDevice, readings, startMs).map((e, seq) => encodePublish(topic, e, (seq % MESSAGE_ID_MAX) + 1));
    for (const f of frames) bytes += f.length;
    positionOf.set(d.deviceId, devices.length);
    devices.push({ d, frames, client: null, dropped: false });
  }
  const slots = devices.length * perDevice;
  pubAt = new Float64Array(slots).fill(Number.NaN);
  ackAt = new Float64Array(slots).fill(Number.NaN);
  rcptAt = new Float64Array(slots).fill(Number.NaN);
  return {
    ms: performance.now() - started,
    devices: devices.length,
    envelopes: slots,
    frameBytes: bytes,
    // For the registration file, in the order of `devices`.
    publicKeys: devices.map((d) => Buffer.from(d.d.publicKey).toString("hex")),
  };
}

function onMessage(position: number, topic: string, payload: Buffer): void {
  const at = performance.now();
  if (topic.endsWith("/receipts")) {
    for (const r of decodeReceipts(new Uint8Array(payload)) ?? []) {
      if (r.seq < 0 || r.seq >= perDevice) continue;
      const k = position * perDevice + r.seq;
      if (Number.isNaN(rcptAt[k]!)) rcptAt[k] = at;
      else duplicates++;
    }
  } else if (topic.endsWith("/errors")) {
    const e = decodeDeviceError(new Uint8Array(payload));
    const code = e?.code ?? "undecodable";
    errors.set(code, (errors.get(code) ?? 0) + 1);
  }
}

async function connectOne(dev: Device, ports: readonly number[], keepaliveS: number): Promise<string | null> {
  // Device g to gateway g mod K: the fleet spread evenly over the gateways, each device always to the same one.
  const port = ports[dev.d.index % ports.length]!;
  const position = positionOf.get(dev.d.deviceId)!;
  try {
    const client = await RawMqttClient.connect({
      host: "127.0.0.1",
      port,
      localAddress: dev.d.sourceIp,
      clientId: dev.d.deviceId, // the gateway takes a device only under its own id
      username: dev.d.deviceId,
      password: fleetToken(dev.d, Date.now() + 3_600_000),
      keepaliveS,
      onMessage: (topic, payload) => onMessage(position, topic, payload),
      onClose: () => {
        dev.dropped = true;
      },
    });
    dev.client = client;
    await client.subscribe(`devices/${dev.d.deviceId}/down/#`);
    return null;
  } catch (e) {
    dev.client?.end().catch(() => undefined);
    dev.client = null;
    return (e as Error).message.replace(/\d+(\.\d+)*:\d+/g, "ADDR"); // one key per kind of failure, not per address
  }
}

async function connect(args: Record<string, unknown>) {
  const ports = (args.ports as number[]).map(Number);
  const keepaliveS = Number(args.keepaliveS);
  const concurrency = Number(args.concurrency);
  const retries = Number(args.retries);
  const started = performance.now();
  const failures = new Map<string, number>();
  const latencies: number[] = [];
  let todo = devices.filter((d) => d.client === null || !d.client.connected);
  let attempts = 0;
  for (let round = 0; round <= retries && todo.length > 0; round++) {
    if (round > 0) await sleep(1_000);
    const failed: Device[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
        while (next < todo.length) {
          const dev = todo[next++]!;
          attempts++;
          const t0 = performance.now();
          const e = await connectOne(dev, ports, keepaliveS);
          if (e === null) latencies.push(performance.now() - t0);
          else {
            failed.push(dev);
            failures.set(e, (failures.get(e) ?? 0) + 1);
          }
        }
      }),
    );
    todo = failed;
  }
  return {
    ms: performance.now() - started,
    connected: devices.filter((d) => d.client?.connected === true).length,
    attempts,
    failures: Object.fromEntries(failures),
    // Sorted, so the orchestrator merges percentiles without sorting again per process.
    latencies: Float64Array.from(latencies).sort(),
    fdLimit: openFilesLimit(),
  };
}

async function run(args: Record<string, unknown>) {
  const startAtMs = Number(args.startAtMs);
  const fleet = Number(args.fleet);
  const minutes = Number(args.minutes);
  const drainMs = Number(args.drainMs);
  const envelopes = Math.min(minutes, perDevice);
  const minuteMs = 60_000;
  // Each device's send times, in order: device g's phase is g/N of a minute.
  const due: { at: number; position: number; seq: number }[] = [];
  for (const [position, dev] of devices.entries()) {
    const phase = Math.floor((dev.d.index * minuteMs) / fleet);
    for (let seq = 0; seq < envelopes; seq++) due.push({ at: startAtMs + seq * minuteMs + phase, position, seq });
  }
  due.sort((a, b) => a.at - b.at);
  errors.clear();
  duplicates = 0;
  const cpu0 = { main: mainThreadCpuS(), proc: processCpuS(), at: performance.now() };
  let next = 0;
  let notConnected = 0;
  let lateMaxMs = 0;
  // The schedule is in epoch ms (shared by every process); times are kept on this process's monotonic clock.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = Date.now();
      while (next < due.length && due[next]!.at <= now) {
        const { at, position, seq } = due[next++]!;
        const dev = devices[position]!;
        lateMaxMs = Math.max(lateMaxMs, now - at);
        if (dev.client === null || !dev.client.connected) {
          notConnected++;
          continue;
        }
        const k = position * perDevice + seq;
        pubAt[k] = performance.now();
        dev.client.publish(dev.frames[seq]!, () => {
          ackAt[k] = performance.now();
        });
      }
      if (next >= due.length) resolve();
      else setTimeout(tick, Math.max(1, Math.min(20, due[next]!.at - Date.now())));
    };
    tick();
  });
  const cpu1 = { main: mainThreadCpuS(), proc: processCpuS(), at: performance.now() };
  const drainUntil = performance.now() + drainMs;
  const missing = () => {
    let n = 0;
    for (let k = 0; k < pubAt.length; k++) if (!Number.isNaN(pubAt[k]!) && Number.isNaN(rcptAt[k]!)) n++;
    return n;
  };
  while (missing() > 0 && performance.now() < drainUntil) await sleep(100);
  let published = 0;
  let acked = 0;
  let receipted = 0;
  const receiptMs = new Float64Array(devices.length * envelopes);
  const ackMs = new Float64Array(devices.length * envelopes);
  let n = 0;
  for (let position = 0; position < devices.length; position++) {
    for (let seq = 0; seq < envelopes; seq++) {
      const k = position * perDevice + seq;
      const p = pubAt[k]!;
      if (Number.isNaN(p)) continue;
      published++;
      if (!Number.isNaN(ackAt[k]!)) acked++;
      if (!Number.isNaN(rcptAt[k]!)) receipted++;
      receiptMs[n] = Number.isNaN(rcptAt[k]!) ? Number.POSITIVE_INFINITY : rcptAt[k]! - p;
      ackMs[n] = Number.isNaN(ackAt[k]!) ? Number.POSITIVE_INFINITY : ackAt[k]! - p;
      n++;
    }
  }
  return {
    devices: devices.length,
    offered: due.length,
    published,
    acked,
    receipted,
    notConnected,
    dropped: devices.filter((d) => d.dropped).length,
    duplicates,
    lateMaxMs,
    errors: Object.fromEntries(errors),
    receiptMs: receiptMs.subarray(0, n).sort(),
    ackMs: ackMs.subarray(0, n).sort(),
    cpu: { mainS: cpu1.main - cpu0.main, processS: cpu1.proc - cpu0.proc, wallS: (cpu1.at - cpu0.at) / 1000 },
  };
}

serve({
  prepare,
  connect,
  run,
  async disconnect() {
    await Promise.all(devices.map((d) => d.client?.end()));
    for (const d of devices) d.client = null;
    return null;
  },
  stats() {
    const m = process.memoryUsage();
    return {
      rss: m.rss,
      cpu: { mainS: mainThreadCpuS(), processS: processCpuS() },
      connected: devices.filter((d) => d.client?.connected === true).length,
      fdLimit: openFilesLimit(),
    };
  },
});

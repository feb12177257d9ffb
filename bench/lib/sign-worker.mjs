// A pre-signing worker thread of the load generator (bench/lib/loadgen.ts): signs devices
// [from, to) × perDevice envelopes with node:crypto (meters' readings, or routers' usage with their
// clients' vouchers: kind "router.usage"), wraps each in the QoS 1 PUBLISH frame the
// device will send (its up topic, packet identifier seq % 65,535 + 1, bench/lib/raw-mqtt.ts), and
// hands the frames back in one transferred buffer: the envelopes are kept only inside their frames,
// so memory holds each envelope once. Worker threads do not reliably inherit the tsx loader, so it
// registers tsx itself (as node/refine/worker-entry.mjs does).
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { benchDevice, signedEnvelopes, signedUsageEnvelopes } = await import("./devices.ts");
const { upTopic } = await import("../../devices/messages.ts");
const { encodePublish, MESSAGE_ID_MAX } = await import("./raw-mqtt.ts");
const { from, to, perDevice, readings, body, startMs, kind, sessionUpdates } = workerData;
const all = [];
let bytes = 0;
for (let i = from; i < to; i++) {
  const device = benchDevice(i);
  const topic = upTopic(device.deviceId, kind);
  const envelopes =
    kind === "router.usage"
      ? signedUsageEnvelopes(device, perDevice, startMs, { sessionUpdates })
      : signedEnvelopes(device, perDevice, readings, startMs, body);
  const frames = envelopes.map((e, seq) => encodePublish(topic, e, (seq % MESSAGE_ID_MAX) + 1));
  for (const f of frames) bytes += f.length;
  all.push(frames);
}
const buffer = new ArrayBuffer(bytes);
const view = new Uint8Array(buffer);
const offsets = new Float64Array((to - from) * perDevice + 1);
let at = 0;
let k = 0;
for (const frames of all) {
  for (const f of frames) {
    offsets[k++] = at;
    view.set(f, at);
    at += f.length;
  }
}
offsets[k] = at;
parentPort.postMessage({ buffer, offsets }, [buffer, offsets.buffer]);

// A pre-signing worker thread of the load generator (bench/lib/loadgen.ts): signs devices
// [from, to) × perDevice envelopes with node:crypto and hands them back in one transferred
// buffer. Worker threads do not reliably inherit the tsx loader, so it registers tsx itself
// (as node/refine/worker-entry.mjs does).
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { benchDevice, signedEnvelopes } = await import("./devices.ts");
const { from, to, perDevice, readings, startMs } = workerData;
const all = [];
let bytes = 0;
for (let i = from; i < to; i++) {
  const envelopes = signedEnvelopes(benchDevice(i), perDevice, readings, startMs);
  for (const e of envelopes) bytes += e.length;
  all.push(envelopes);
}
const buffer = new ArrayBuffer(bytes);
const view = new Uint8Array(buffer);
const offsets = new Float64Array((to - from) * perDevice + 1);
let at = 0;
let k = 0;
for (const envelopes of all) {
  for (const e of envelopes) {
    offsets[k++] = at;
    view.set(e, at);
    at += e.length;
  }
}
offsets[k] = at;
parentPort.postMessage({ buffer, offsets }, [buffer, offsets.buffer]);

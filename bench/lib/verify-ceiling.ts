/**
 * The machine's Ed25519 verification rate (node:crypto, prebuilt KeyObjects) on `threads` worker
 * threads at once, for the gateway benchmarks' ceiling: each thread verifies the given
 * signatures over and over for `ms` and counts.
 */
import { Worker } from "node:worker_threads";

export interface VerifySample {
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createPublicKey, verify } = require("node:crypto");
const prefix = Buffer.from("302a300506032b6570032100", "hex");
const samples = workerData.samples.map((s) => ({ key: createPublicKey({ key: Buffer.concat([prefix, s.publicKey]), format: "der", type: "spki" }), message: s.message, signature: s.signature }));
parentPort.on("message", (ms) => {
  for (let i = 0; i < 200; i++) verify(null, samples[i % samples.length].message, samples[i % samples.length].key, samples[i % samples.length].signature); // warm
  const start = performance.now();
  let n = 0, bad = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 50; i++, n++) { const s = samples[n % samples.length]; if (!verify(null, s.message, s.key, s.signature)) bad++; }
  }
  parentPort.postMessage({ n, bad, ms: performance.now() - start });
});
`;

export class VerifyCeiling {
  private readonly workers: Worker[];

  constructor(threads: number, samples: readonly VerifySample[]) {
    this.workers = Array.from({ length: threads }, () => new Worker(SOURCE, { eval: true, workerData: { samples } }));
  }

  /** Verifications per second on the first `threads` workers running at once. */
  async rate(ms: number, threads = this.workers.length): Promise<number> {
    const results = await Promise.all(
      this.workers.slice(0, threads).map(
        (w) =>
          new Promise<{ n: number; bad: number; ms: number }>((resolve) => {
            w.once("message", resolve);
            w.postMessage(ms);
          }),
      ),
    );
    if (results.some((r) => r.bad > 0)) throw new Error("a sample signature did not verify");
    return results.reduce((s, r) => s + r.n / (r.ms / 1000), 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

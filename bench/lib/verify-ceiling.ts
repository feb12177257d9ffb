/**
 * The machine's Ed25519 verification rate with libsodium (sodium-native, what the node's refine
 * uses: node/crypto/ed25519.ts) on `threads` worker threads at once, for the gateway benchmarks'
 * ceiling: each thread verifies the given signatures over and over for `ms` and counts.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

export interface VerifySample {
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const sodium = require(workerData.sodiumPath);
const samples = workerData.samples;
const verify = (s) => sodium.crypto_sign_verify_detached(s.signature, s.message, s.publicKey);
parentPort.on("message", (ms) => {
  for (let i = 0; i < 200; i++) verify(samples[i % samples.length]); // warm
  const start = performance.now();
  let n = 0, bad = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 50; i++, n++) { if (!verify(samples[n % samples.length])) bad++; }
  }
  parentPort.postMessage({ n, bad, ms: performance.now() - start });
});
`;

export class VerifyCeiling {
  private readonly workers: Worker[];

  constructor(threads: number, samples: readonly VerifySample[]) {
    const sodiumPath = createRequire(import.meta.url).resolve("sodium-native");
    this.workers = Array.from({ length: threads }, () => new Worker(SOURCE, { eval: true, workerData: { samples, sodiumPath } }));
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

/**
 * The live event stream's cost on the gateway's event loop: `GET /v1/events` (gateway/ledger/events.ts)
 * with N reading clients, fed a block's worth of entry events at once (10,000: the target load's
 * devices, an entry each), from the in-memory ledger. The clients run in a child process; the
 * table shows the server process's CPU from the first event until every client has every event.
 *
 *   npx tsx bench/sse-fanout.ts [--events 10000] [--clients 1,10,50] [--runs 3]
 */
import { fork } from "node:child_process";
import { get } from "node:http";
import { fileURLToPath } from "node:url";
import { buildHttp } from "../gateway/http.ts";
import type { Registrations } from "../gateway/registration.ts";
import { envelopesEntry, FakeLedger, fakeHex } from "../gateway/testing/fake-ledger.ts";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** Child: opens `clients` streams, counts entry events, says "done" when each has `expected`. */
function runClients(port: number, clients: number, expected: number): void {
  let done = 0;
  for (let c = 0; c < clients; c++) {
    get({ host: "127.0.0.1", port, path: "/v1/events" }, (res) => {
      let count = 0;
      let tail = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        const parts = (tail + chunk).split("\n\n");
        tail = parts.pop()!;
        for (const p of parts) if (p.startsWith("event: entry")) count++;
        if (count === expected && ++done === clients) process.send!("done");
      });
    });
  }
}

async function once(clients: number, events: number): Promise<{ cpuMs: number; wallMs: number }> {
  const ledger = new FakeLedger();
  let streams = 0;
  const app = buildHttp({
    operatorToken: "x",
    registrations: {} as Registrations,
    metrics: {} as never,
    count: () => {},
    ledger,
    events: { queueMax: events, onClients: (n) => (streams = n) },
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as { port: number }).port;
  const child = fork(fileURLToPath(import.meta.url), ["--child", String(port), String(clients), String(events)], { execArgv: ["--import", "tsx"] });
  const done = new Promise<void>((resolve) => child.on("message", (m) => m === "done" && resolve()));
  while (streams < clients) await new Promise((r) => setTimeout(r, 20));
  const devices = Array.from({ length: 1_000 }, (_, i) => fakeHex(`device ${i}`, 16));
  const entries = Array.from({ length: events }, (_, i) => envelopesEntry(i, devices[i % devices.length]!));
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (const entry of entries) ledger.addEntry(entry);
  await done;
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - t0;
  child.kill();
  await app.close();
  return { cpuMs: (used.user + used.system) / 1000, wallMs };
}

if (process.argv[2] === "--child") {
  const [port, clients, expected] = process.argv.slice(3).map(Number);
  runClients(port!, clients!, expected!);
} else {
  const events = Number(arg("events", "10000"));
  const runs = Number(arg("runs", "3"));
  console.log(`| clients | events | server CPU ms (median of ${runs}) | all delivered ms |`);
  console.log("|---|---|---|---|");
  for (const clients of arg("clients", "1,10,50").split(",").map(Number)) {
    const results = [];
    for (let r = 0; r < runs; r++) results.push(await once(clients, events));
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`| ${clients} | ${events} | ${median(results.map((x) => x.cpuMs)).toFixed(0)} | ${median(results.map((x) => x.wallMs)).toFixed(0)} |`);
  }
}

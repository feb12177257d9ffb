/** `jamgate device …` run in-process through commander, against a real MQTT broker and a stand-in gateway HTTP API. */
import { EventEmitter } from "node:events";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { nextAnswer, registerDeviceCommands } from "./cli.ts";
import { decodeBody, decodeEnvelope, toHex, verifyEnvelope } from "./envelope.ts";
import { type DeviceKey, keyFromJson } from "./keys.ts";
import { encodeDeviceError, encodeReceipt } from "./messages.ts";
import { startTestBroker, type TestBroker } from "./testing/broker.ts";

let stdout: string[];
const cleanup: (() => Promise<void>)[] = [];
beforeEach(() => {
  stdout = [];
  vi.spyOn(console, "log").mockImplementation((line: string) => void stdout.push(line));
  vi.spyOn(process.stderr, "write").mockImplementation(() => true);
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function jamgate(...args: string[]): Promise<void> {
  const program = new Command("jamgate").exitOverride();
  registerDeviceCommands(program);
  await program.parseAsync(["device", ...args], { from: "user" });
}

const tempDir = () => mkdtempSync(join(tmpdir(), "jg-cli-"));

async function keygen(dir: string): Promise<{ path: string; key: DeviceKey }> {
  const path = join(dir, "key.json");
  await jamgate("keygen", "--out", path);
  return { path, key: keyFromJson(JSON.parse(readFileSync(path, "utf8"))) };
}

async function broker(key: DeviceKey): Promise<TestBroker> {
  const b = await startTestBroker([key]);
  cleanup.push(() => b.close());
  return b;
}

describe("jamgate device keygen", () => {
  it("writes a key file of mode 0600 and refuses to overwrite it without --force", async () => {
    const dir = tempDir();
    const { path, key } = await keygen(dir);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(stdout[0]!)).toEqual({ deviceId: key.deviceId, publicKey: toHex(key.publicKey), keyFile: path });
    await expect(jamgate("keygen", "--out", path)).rejects.toMatchObject({ code: "JG_ERR_CLI_ARGUMENT", exitCode: 1 });
    expect(keyFromJson(JSON.parse(readFileSync(path, "utf8")))).toEqual(key);
    await jamgate("keygen", "--out", path, "--force");
    expect(keyFromJson(JSON.parse(readFileSync(path, "utf8"))).deviceId).not.toBe(key.deviceId);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe("jamgate device envelope", () => {
  it("makes an envelope file that decodes and verifies, its body the CBOR array of the readings", async () => {
    const dir = tempDir();
    const { path, key } = await keygen(dir);
    const readings = [
      { timeMs: 1, importWh: 10 },
      { timeMs: 2, importWh: 11 },
    ];
    writeFileSync(join(dir, "r.jsonl"), `${readings.map((r) => JSON.stringify(r)).join("\n")}\n\n`);
    await jamgate(
      "envelope",
      "--key",
      path,
      "--seq",
      "42",
      "--readings",
      join(dir, "r.jsonl"),
      "--out",
      join(dir, "env.cbor"),
      "--kind",
      "inverter.reading",
      "--time-ms",
      "1700000000000",
    );

    const decoded = decodeEnvelope(readFileSync(join(dir, "env.cbor")));
    if (!decoded.ok) throw new Error(decoded.error.detail);
    expect(decoded.envelope).toMatchObject({ device: key.deviceId, seq: 42, kind: "inverter.reading", timeMs: 1_700_000_000_000 });
    expect(verifyEnvelope(decoded.envelope, key.publicKey)).toBe(true);
    expect(decodeBody(decoded.envelope.body)).toEqual(readings);
    expect(JSON.parse(stdout.at(-1)!)).toMatchObject({ seq: 42, topic: `devices/${key.deviceId}/up/inverter.reading` });
  });

  it("refuses a readings file that is not JSON lines, with a code", async () => {
    const dir = tempDir();
    const { path } = await keygen(dir);
    writeFileSync(join(dir, "bad.jsonl"), '{"a":1}\nnot json\n');
    await expect(jamgate("envelope", "--key", path, "--seq", "1", "--readings", join(dir, "bad.jsonl"), "--out", join(dir, "e.cbor"))).rejects.toMatchObject({
      code: "JG_ERR_CLI_ARGUMENT",
      message: expect.stringMatching(/bad\.jsonl:2/),
    });
  });
});

describe("jamgate device publish", () => {
  it("sends simulated envelopes and waits for every receipt", async () => {
    const dir = tempDir();
    const { path, key } = await keygen(dir);
    const b = await broker(key);
    b.onEnvelope = (e, broker) => {
      setTimeout(
        () =>
          void broker.publishDown(
            e.device,
            "receipts",
            encodeReceipt({ seq: e.seq, packageHash: new Uint8Array(32).fill(1), blockHash: new Uint8Array(32).fill(2), slot: 5 }),
          ),
        20,
      );
    };
    await jamgate(
      "publish",
      "--key",
      path,
      "--mqtt",
      b.url,
      "--simulate",
      "5",
      "--data-dir",
      join(dir, "device"),
      "--wait-receipts",
      "--json",
      "--timeout-ms",
      "10000",
    );

    expect(JSON.parse(stdout.at(-1)!)).toEqual({ deviceId: key.deviceId, sent: 5, acked: 5, receipts: 5, errors: {}, unanswered: 0 });
    const printed = stdout.slice(1, -1).map((line) => JSON.parse(line) as { receipt: { seq: number } });
    expect(printed.map((p) => p.receipt.seq).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(printed[0]).toEqual({ receipt: { seq: printed[0]!.receipt.seq, package: "01".repeat(32), block: "02".repeat(32), slot: 5 } });
    expect(b.received.map((r) => r.envelope.seq)).toEqual([0, 1, 2, 3, 4]);
    const readings = decodeBody(b.received[0]!.envelope.body) as { importWh: number; powerW: number }[];
    expect(readings).toHaveLength(60);
    expect(Number.isSafeInteger(readings[0]!.importWh) && Number.isSafeInteger(readings[0]!.powerW)).toBe(true);
  });

  it("batches a readings file --per-envelope, and exits with the gateway's code when it refuses envelopes", async () => {
    const dir = tempDir();
    const { path, key } = await keygen(dir);
    const b = await broker(key);
    b.onEnvelope = (e, broker) => {
      const answer =
        e.seq === 1
          ? encodeDeviceError({ seq: e.seq, code: "JG_ERR_ENVELOPE_SIGNATURE", detail: "no" })
          : encodeReceipt({ seq: e.seq, packageHash: new Uint8Array(32), blockHash: new Uint8Array(32), slot: 1 });
      setTimeout(() => void broker.publishDown(e.device, e.seq === 1 ? "errors" : "receipts", answer), 20);
    };
    writeFileSync(join(dir, "r.jsonl"), Array.from({ length: 5 }, (_, i) => JSON.stringify({ i })).join("\n"));
    await expect(
      jamgate(
        "publish",
        "--key",
        path,
        "--mqtt",
        b.url,
        "--readings",
        join(dir, "r.jsonl"),
        "--per-envelope",
        "2",
        "--data-dir",
        join(dir, "device"),
        "--wait-receipts",
      ),
    ).rejects.toMatchObject({
      code: "JG_ERR_ENVELOPE_SIGNATURE",
      exitCode: 1,
    });
    expect(JSON.parse(stdout.at(-1)!)).toMatchObject({ sent: 3, receipts: 2, errors: { JG_ERR_ENVELOPE_SIGNATURE: 1 }, unanswered: 0 });
    // Each answer printed once as it came: receipts with their package, block and slot, the refusal with its code and detail.
    const zeros = "00".repeat(32);
    expect(stdout.slice(1, -1).sort()).toEqual([
      `receipt seq=0 slot=1 package=${zeros} block=${zeros}`,
      `receipt seq=2 slot=1 package=${zeros} block=${zeros}`,
      "refused seq=1 JG_ERR_ENVELOPE_SIGNATURE: no",
    ]);
    expect(b.received.map((r) => decodeBody(r.envelope.body))).toEqual([[{ i: 0 }, { i: 1 }], [{ i: 2 }, { i: 3 }], [{ i: 4 }]]);
  });

  it("needs exactly one of --readings and --simulate", async () => {
    const { path } = await keygen(tempDir());
    await expect(jamgate("publish", "--key", path, "--mqtt", "mqtt://127.0.0.1:1")).rejects.toMatchObject({ code: "JG_ERR_CLI_ARGUMENT" });
  });
});

describe("jamgate device register", () => {
  async function gateway(handler: (req: IncomingMessage, body: string) => { status: number; body: unknown }): Promise<string> {
    const server: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const answer = handler(req, body);
        res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => server.close(() => r())));
    const address = server.address();
    return `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
  }

  it("posts the public key with the operator token from --data-dir and waits until registered", async () => {
    const dir = tempDir();
    const { path, key } = await keygen(dir);
    writeFileSync(join(dir, "operator-token"), "secret-token\n", { mode: 0o600 });
    const seen: { method: string; url: string; auth: string; body: string }[] = [];
    let polls = 0;
    const url = await gateway((req, body) => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization ?? "", body });
      if (req.method === "POST") return { status: 202, body: { deviceId: key.deviceId, status: "pending", packageHash: "ab".repeat(32) } };
      return { status: 200, body: { deviceId: key.deviceId, kind: "meter", status: ++polls < 3 ? "pending" : "registered" } };
    });
    await jamgate("register", "--key", path, "--kind", "meter", "--gateway", url, "--data-dir", dir, "--wait", "--poll-ms", "10");

    expect(seen[0]).toEqual({
      method: "POST",
      url: "/v1/devices",
      auth: "Bearer secret-token",
      body: JSON.stringify({ publicKey: toHex(key.publicKey), kind: "meter" }),
    });
    expect(seen.slice(1).every((s) => s.method === "GET" && s.url === `/v1/devices/${key.deviceId}`)).toBe(true);
    expect(stdout.slice(1).map((l) => JSON.parse(l).status)).toEqual(["pending", "registered"]); // after keygen's line
  });

  it("exits with the gateway's code when it refuses, and needs an operator token", async () => {
    const dir = tempDir();
    const { path } = await keygen(dir);
    const url = await gateway(() => ({ status: 401, body: { code: "JG_ERR_OPERATOR_TOKEN", message: "missing or wrong operator token" } }));
    await expect(jamgate("register", "--key", path, "--kind", "meter", "--gateway", url, "--token", "wrong")).rejects.toMatchObject({
      code: "JG_ERR_OPERATOR_TOKEN",
      exitCode: 1,
    });
    await expect(jamgate("register", "--key", path, "--kind", "meter", "--gateway", url, "--data-dir", join(dir, "nowhere"))).rejects.toMatchObject({
      code: "JG_ERR_OPERATOR_TOKEN",
    });
    await expect(jamgate("register", "--key", path, "--kind", "toaster", "--token", "t")).rejects.toMatchObject({ exitCode: 1 });
  });
});

describe("jamgate device receipts", () => {
  it("pages through the device's ledger entries by cursor and prints its settled seqs oldest first, with the service's highest", async () => {
    const dir = tempDir();
    const { path, key } = await keygen(dir);
    const entry = (id: number, seqs: number[]) => ({
      id,
      kind: "envelopes",
      service: "telemetry",
      slot: 10 + id,
      blockHash: "bb".repeat(32),
      device: key.deviceId,
      seqs,
      packageHash: String(id).padStart(2, "0").repeat(32),
    });
    const urls: string[] = [];
    const server: Server = createServer((req, res) => {
      urls.push(req.url!);
      const url = new URL(req.url!, "http://x");
      const body =
        url.pathname === `/v1/devices/${key.deviceId}`
          ? { deviceId: key.deviceId, kind: "meter", service: "telemetry", status: "registered", settledHighestSeq: 7 }
          : url.searchParams.get("before") === null
            ? { items: [entry(9, [6, 7]), entry(5, [3, 4, 5])], next: 5 }
            : { items: [entry(2, [0, 1])], next: null };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => server.close(() => r())));
    const address = server.address() as { port: number };
    await jamgate("receipts", "--key", path, "--gateway", `http://127.0.0.1:${address.port}`);

    expect(urls).toEqual([
      `/v1/devices/${key.deviceId}`,
      `/v1/entries?device=${key.deviceId}&limit=500`,
      `/v1/entries?device=${key.deviceId}&limit=500&before=5`,
    ]);
    expect(stdout.slice(1)).toEqual([
      `settled seqs=0-1 slot=12 package=${"02".repeat(32)} block=${"bb".repeat(32)}`,
      `settled seqs=3-5 slot=15 package=${"05".repeat(32)} block=${"bb".repeat(32)}`,
      `settled seqs=6-7 slot=19 package=${"09".repeat(32)} block=${"bb".repeat(32)}`,
      `device ${key.deviceId} (meter on telemetry): the service's settled highest seq is 7; the ledger lists 7 settled seqs: 0-1,3-7`,
    ]);
  });

  it("without --gateway and with no jamgate running on --data-dir, says how to start one", async () => {
    const dir = tempDir();
    const { path } = await keygen(dir);
    await expect(jamgate("receipts", "--key", path, "--data-dir", dir)).rejects.toMatchObject({
      code: "JG_ERR_NO_GATEWAY",
      message: expect.stringContaining(`start one with \`jamgate start --data-dir ${dir}\`, or give --gateway`),
    });
  });
});

describe("waiting for answers", () => {
  it("leaves no listener behind, whether an answer comes or the wait times out", async () => {
    const client = new EventEmitter();
    for (let i = 0; i < 15; i++) await nextAnswer(client, 1);
    setTimeout(() => client.emit("receipt", {}), 1);
    await nextAnswer(client, 5_000);
    expect(client.listenerCount("receipt")).toBe(0);
    expect(client.listenerCount("deviceError")).toBe(0);
  });
});

/**
 * docs/protocol.md against the code: every figure the document states that the code holds as a
 * constant is looked up in the document as an exact phrase built from that constant, the worked
 * example is computed again, and what the document says the code does (the gateway's CBOR decoder,
 * the column form, key files, the registration endpoints) is tried on the code. A constant or a
 * behaviour that changes without the document fails here.
 * Outside implementers write devices from the document alone (issue 15, point 9), so its bytes
 * must be the code's.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { SEQ_WINDOW_SEQS } from "./protocol/seq-window.ts";
import { decodeMeterBody, MAP_ENTRIES_MAX, READINGS_PER_ENVELOPE_MAX } from "../services/energy-trading/body.ts";
import { exceedsPower, METER_POWER_W_MAX } from "../services/energy-trading/condense.ts";
import { FUTURE_TOLERANCE_MS } from "../gateway/accept.ts";
import { brokerLimits } from "../gateway/broker.ts";
import { DEFAULT_PORTS, registerStartCommand, type StackWiring } from "../gateway/cli.ts";
import { gatewayLimits } from "../gateway/gateway.ts";
import { buildHttp } from "../gateway/http.ts";
import { packetLimits } from "../gateway/packet-bounds.ts";
import { REGISTRATION_BATCH_MS, type Registrations } from "../gateway/registration.ts";
import { EMPTY_WINDOW, judgeSeq, SEQ_JUMP_MAX } from "../gateway/window.ts";
import { errorRegistry } from "./protocol/errors.ts";
import { TOKEN_LIFETIME_MS } from "./client.ts";
import { encodeCbor } from "./cbor.ts";
import {
  BODY_BYTES_MAX,
  decodeEnvelope,
  ENVELOPE_BYTES_MAX,
  ENVELOPE_DOMAIN,
  ENVELOPE_KINDS,
  encodeEnvelope,
  signEnvelope,
  signingBytes,
  toHex,
} from "./envelope.ts";
import { deviceKeyFromSecret, keyFromJson, keyToJson, mqttPassword, parseMqttPassword, TOKEN_LIFETIME_MAX_MS } from "./keys.ts";
import { DETAIL_CHARS_MAX, DOWN_MESSAGE_BYTES_MAX, RECEIPT_SEQS_MAX } from "./messages.ts";
import { columnsOf, encodeReadings, rowsOf } from "./readings.ts";

const raw = readFileSync(new URL("../docs/protocol.md", import.meta.url), "utf8");
/** The document with every run of whitespace as one space, so a phrase may wrap across lines. */
const doc = raw.replace(/\s+/g, " ");

/** A number as the document writes it: thousands separated by commas. */
const n = (value: number | bigint): string => value.toLocaleString("en-US");

function expectPhrase(phrase: string): void {
  expect(doc.includes(phrase), `docs/protocol.md should say: ${phrase}`).toBe(true);
}

/** The text of an ASCII byte string, and the byte string it must be. */
const ascii = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

// The worked example's inputs, as the document states them.
const SEED = Uint8Array.from({ length: 32 }, (_, i) => i);
const EXPIRES_AT_MS = 1_767_225_600_000;
const READINGS = [
  { t: 1_767_225_540_000, importWh: 1_204_339, exportWh: 88_120, powerW: 412 },
  { t: 1_767_225_541_000, importWh: 1_204_340, exportWh: 88_120, powerW: 398 },
  { t: 1_767_225_542_000, importWh: 1_204_342, exportWh: 88_120, powerW: 405 },
];
const TIME_MS = 1_767_225_542_000;

describe("docs/protocol.md states the code's bytes", () => {
  it("the envelope domain: 19 octets of ASCII and a zero octet, 20 in all", () => {
    const text = ascii(ENVELOPE_DOMAIN.subarray(0, -1));
    expect(ENVELOPE_DOMAIN.at(-1)).toBe(0);
    const hex = toHex(ENVELOPE_DOMAIN.subarray(0, -1));
    const words = `the ${ENVELOPE_DOMAIN.length - 1} octets \`${text}\``;
    expectPhrase(`| domain | ${ENVELOPE_DOMAIN.length}: ${words} (hex \`${hex}\`) and a zero octet |`);
    expectPhrase(`\`${hex}\` \`00\` (${words} and a zero octet)`);
    expectPhrase(`\`${hex}\` \`00\` (domain)`);
    // The figure the document once had wrong.
    expect(doc).not.toMatch(/the 20 octets `jamgate\/envelope\/v1`/);
  });

  it("the signed bytes: their fixed part and the device id's 32 ASCII digits", () => {
    const key = deviceKeyFromSecret(SEED);
    const body = new Uint8Array(10);
    const kind = "meter.reading";
    const signed = signingBytes({ version: 1, device: key.deviceId, seq: 0, kind, timeMs: 0, body });
    const fixed = signed.length - kind.length - body.length;
    expectPhrase(`In all ${fixed} + n + m bytes: ${fixed + kind.length} + m for a \`${kind}\`.`);
    const idAt = ENVELOPE_DOMAIN.length + 2;
    expect(signed[idAt - 1]).toBe(32);
    expect(ascii(signed.subarray(idAt, idAt + 32))).toBe(key.deviceId);
    expectPhrase(`| device id | 1 + 32: its length, \`20\` (32), then the device id as 32 ASCII hex digits`);
    expectPhrase(`\`${kind}\` (n = ${kind.length})`);
  });

  it("the token: its signed bytes, unpadded base64url of 86 characters, the pattern the document gives", () => {
    const key = deviceKeyFromSecret(SEED);
    const token = mqttPassword(key, EXPIRES_AT_MS);
    const message = parseMqttPassword(key.deviceId, token)!.message;
    const domain = message.subarray(0, message.length - 32 - 8);
    expect(domain.at(-1)).toBe(0);
    expect(ascii(message.subarray(domain.length, domain.length + 32))).toBe(key.deviceId);
    expectPhrase(`over these ${message.length} bytes`);
    expectPhrase(
      `| ${domain.length} | the ${domain.length - 1} octets \`${ascii(domain.subarray(0, -1))}\` (hex \`${toHex(domain.subarray(0, -1))}\`) and a zero octet |`,
    );
    expectPhrase(
      `Ed25519-sign the ${message.length} bytes \`${toHex(domain.subarray(0, -1))}\` \`00\` (the ${domain.length - 1} octets \`${ascii(domain.subarray(0, -1))}\` and a zero octet)`,
    );

    const signature = token.split(".")[2]!;
    expect(signature).not.toContain("=");
    expectPhrase(`without padding: ${signature.length} characters`);
    expectPhrase(`base64url without padding, ${signature.length} characters`);
    const stated = /The gateway matches `([^`]+)`/.exec(doc)?.[1];
    expect(stated).toBeDefined();
    const pattern = new RegExp(stated!);
    expect(pattern.test(token)).toBe(true);
    // Padded, it is neither the documented pattern nor a token to the gateway's parser.
    const padded = `${token}==`;
    expectPhrase(`a padded signature (${signature.length + 2} characters, ending \`==\`)`);
    expect(pattern.test(padded)).toBe(false);
    expect(parseMqttPassword(key.deviceId, padded)).toBeNull();
    const standard = token.replace(/-/g, "+").replace(/_/g, "/");
    if (standard !== token) expect(parseMqttPassword(key.deviceId, standard)).toBeNull();
  });

  it("token lifetimes", () => {
    expectPhrase(`more than ${n(TOKEN_LIFETIME_MAX_MS)} ms (${TOKEN_LIFETIME_MAX_MS / 3_600_000} h) after it`);
    expect(TOKEN_LIFETIME_MS).toBe(60 * 60 * 1000);
    expectPhrase("(the SDK: an hour ahead, `TOKEN_LIFETIME_MS`)");
  });

  it("envelope and body limits, the future tolerance and the kinds", () => {
    expectPhrase(`| \`b\` | byte string | the body: at most ${n(BODY_BYTES_MAX)} bytes`);
    expectPhrase(`The whole envelope is at most ${n(ENVELOPE_BYTES_MAX)} bytes.`);
    expectPhrase(`**Body**: the readings as CBOR, at most ${n(BODY_BYTES_MAX)} bytes.`);
    expectPhrase(`at most ${n(ENVELOPE_BYTES_MAX)} bytes: each key once, definite lengths, no tags, integers as integers.`);
    expectPhrase(`over ${n(ENVELOPE_BYTES_MAX)} bytes \`JG_ERR_ENVELOPE_OVERSIZE\``);
    expectPhrase(`at most ${n(FUTURE_TOLERANCE_MS)} ms (${FUTURE_TOLERANCE_MS / 60_000} minutes) ahead of the gateway's clock`);
    const kinds = ENVELOPE_KINDS.map((k) => `\`${k}\``);
    expectPhrase(`| \`k\` | text string | the kind: ${kinds.slice(0, -1).join(", ")} or ${kinds.at(-1)} |`);
  });

  it("MQTT packet bounds, WebSocket messages, keep alive, CONNECT timeout and session queues", () => {
    const { connectBytesMax, publishBytesMax, otherBytesMax } = packetLimits;
    expectPhrase(
      `a CONNECT at most ${n(connectBytesMax)} bytes, a PUBLISH at most ${n(publishBytesMax)} bytes (the envelope limit + ${n(publishBytesMax - ENVELOPE_BYTES_MAX)}, for the topic and packet id), any other packet at most ${n(otherBytesMax)} bytes`,
    );
    expectPhrase(`binary messages of at most ${n(brokerLimits.maxPacketBytes)} bytes`);
    expectPhrase(`| keep alive | 1 to ${n(brokerLimits.keepaliveLimitS)} s`);
    expectPhrase(`keep alive 0 or over ${n(brokerLimits.keepaliveLimitS)} s`);
    expectPhrase(`keep alive 1 to ${n(brokerLimits.keepaliveLimitS)} s`);
    expectPhrase(`The CONNECT must come within ${brokerLimits.connectTimeoutMs / 1000} s of the connection.`);
    expectPhrase(`most ${n(brokerLimits.sessionQueueMax)} undelivered messages per session`);
  });

  it("connection limits and the rates of CONNACK 3", () => {
    const { connectionsMax, connectsPerIp, connectsPerDevice } = gatewayLimits;
    expectPhrase(`${n(connectionsMax)} sockets are open, on all listeners together`);
    expectPhrase(`more than ${connectsPerIp.perSecond} new sockets a second from one address (burst ${connectsPerIp.burst})`);
    expectPhrase(`more than ${connectsPerDevice.perSecond} CONNECT a second for one device id (burst ${connectsPerDevice.burst})`);
    expectPhrase(`connect rate of ${connectsPerDevice.perSecond} a second, burst ${connectsPerDevice.burst}`);
  });

  it("default ports", () => {
    expectPhrase(`| MQTT over TCP | ${DEFAULT_PORTS.mqtt} |`);
    expectPhrase(`| MQTT over WebSocket | ${DEFAULT_PORTS.ws} |`);
    expectPhrase(`| MQTT over TLS | ${DEFAULT_PORTS.mqtts} |`);
    expectPhrase(`| MQTT over WebSocket over TLS | ${DEFAULT_PORTS.wss} |`);
    expectPhrase(`| HTTP API (HTTPS with TLS) | ${DEFAULT_PORTS.http} |`);
    expectPhrase(`Plain MQTT (${DEFAULT_PORTS.mqtt}) and plain WebSocket (${DEFAULT_PORTS.ws};`);
    expectPhrase(`-p ${DEFAULT_PORTS.mqtts} --cafile ca.pem`);
    expectPhrase(`registrations that come within ${REGISTRATION_BATCH_MS} ms`);
  });

  it("the seq windows: 64 below the highest, jumps of at most 1,000,000", () => {
    const w = SEQ_WINDOW_SEQS;
    expectPhrase(`| one of the ${w} below H (H − ${w} … H − 1) | new if not logged yet, else \`JG_ERR_ENVELOPE_REPLAY\` |`);
    expectPhrase(`| more than ${w} below H | \`JG_ERR_ENVELOPE_SEQ\` (too old; final) |`);
    expectPhrase(`| above H, by at most ${n(SEQ_JUMP_MAX)} | new |`);
    expectPhrase(`| above H by more than ${n(SEQ_JUMP_MAX)} | \`JG_ERR_ENVELOPE_SEQ\``);
    expectPhrase(`a bitmap of the ${w} seqs below it`);
    expectPhrase(`only for a seq more than ${w} above the highest the gateway knows the device signed`);
    // The table's edges are the code's.
    const h = 1_000;
    const window = { highest: h, below: 0n };
    expect(judgeSeq(window, h - w)).toBe("new");
    expect(judgeSeq(window, h - w - 1)).toBe("too-old");
    expect(judgeSeq(window, h)).toBe("replay");
    expect(judgeSeq(window, h + SEQ_JUMP_MAX)).toBe("new");
    expect(judgeSeq(window, h + SEQ_JUMP_MAX + 1)).toBe("too-far-ahead");
    expect(judgeSeq(EMPTY_WINDOW, 10 * SEQ_JUMP_MAX)).toBe("new");
  });

  it("receipt and error messages", () => {
    expectPhrase(`1 to ${n(RECEIPT_SEQS_MAX)} of them`);
    expectPhrase(`at most ${n(DETAIL_CHARS_MAX)} characters`);
    expectPhrase(`Both are CBOR maps of exactly the keys shown, at most ${n(DOWN_MESSAGE_BYTES_MAX)} bytes`);
  });

  it("the worked example is what the code computes", () => {
    const key = deviceKeyFromSecret(SEED);
    const token = mqttPassword(key, EXPIRES_AT_MS);
    const tokenBytes = parseMqttPassword(key.deviceId, token)!.message;
    const body = encodeReadings(READINGS);
    const envelope = signEnvelope({ version: 1, device: key.deviceId, seq: 0, kind: "meter.reading", timeMs: TIME_MS, body }, key.secretKey);
    const signed = signingBytes(envelope);
    const wire = encodeEnvelope(envelope);
    const expected = [
      `secret key: ${toHex(key.secretKey)}`,
      `public key: ${toHex(key.publicKey)}`,
      `device id: ${key.deviceId}`,
      `token signed bytes (${tokenBytes.length} bytes), for expiresAtMs ${EXPIRES_AT_MS}: ${toHex(tokenBytes)}`,
      `token: ${token}`,
      `body (${body.length} bytes): ${toHex(body)}`,
      `signed bytes (${signed.length} bytes): ${toHex(signed)}`,
      `signature (${envelope.signature.length} bytes): ${toHex(envelope.signature)}`,
      `envelope (${wire.length} bytes): ${toHex(wire)}`,
    ].join("");
    const section = raw.slice(raw.indexOf("## Worked example"));
    const block = /```\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBeDefined();
    // Hex is wrapped in the document: compare without whitespace.
    expect(block!.replace(/\s+/g, "")).toBe(expected.replace(/\s+/g, ""));
    // The prose around it states the same inputs.
    expectPhrase(`made at \`t\` = ${TIME_MS}`);
    for (const r of READINGS) expectPhrase(`{t: ${r.t}, importWh: ${r.importWh}, exportWh: ${r.exportWh}, powerW: ${r.powerW}}`);
  });
  it("key files hold the 32-byte seed, and a file is read from the seed alone", () => {
    const key = deviceKeyFromSecret(SEED);
    const file = keyToJson(key);
    expect(file.secretKey).toBe(toHex(SEED));
    expect(file.secretKey).toHaveLength(2 * SEED.length);
    expect(file.publicKey).toHaveLength(64);
    expectPhrase(`\`secretKey\` is the ${SEED.length}-byte seed, ${file.secretKey.length} hex digits, not the 64-byte secret key`);
    expectPhrase(`a file with ${2 * (SEED.length + key.publicKey.length)} digits is refused`);
    // libsodium's 64-byte secret key (seed ⌢ public key) is not a key file's secretKey.
    expect(() => keyFromJson({ secretKey: toHex(SEED) + toHex(key.publicKey) })).toThrow();
    // publicKey is not read back; a deviceId other than the seed's is refused.
    expect(keyFromJson({ secretKey: file.secretKey, publicKey: "00".repeat(32) }).deviceId).toBe(key.deviceId);
    expect(() => keyFromJson({ ...file, deviceId: "0".repeat(32) })).toThrow();
  });

  it("registration over HTTP: JSON only, the GET without a token", async () => {
    const registered = "11".repeat(16);
    const registrations = {
      register: async () => ({ deviceId: registered, kind: "meter", service: "telemetry", status: "pending", packageHash: "00".repeat(32) }),
      view: async (id: string) => (id === registered ? { deviceId: id, kind: "meter", status: "registered" } : null),
    } as unknown as Registrations;
    const app = buildHttp({ operatorToken: "T", registrations, metrics: {} as never, count: () => {} });
    try {
      const payload = JSON.stringify({ publicKey: "ab".repeat(32), kind: "meter" });
      const post = (headers: Record<string, string>) =>
        app.inject({ method: "POST", url: "/v1/devices", headers: { authorization: "Bearer T", ...headers }, payload });
      expect((await post({ "content-type": "application/json" })).statusCode).toBe(202);
      const body = errorRegistry.JG_ERR_HTTP_BODY.httpStatus;
      for (const other of [{ "content-type": "text/plain" }, {}] as Record<string, string>[]) {
        const reply = await post(other);
        expect(reply.statusCode).toBe(body);
        expect(reply.json().error.code).toBe("JG_ERR_HTTP_BODY");
      }
      expectPhrase(`\`Content-Type: application/json\` (any other, or none, is answered ${body} \`JG_ERR_HTTP_BODY\`)`);
      const get = await app.inject({ method: "GET", url: `/v1/devices/${registered}` });
      expect(get.statusCode).toBe(200);
      expect(get.json().status).toBe("registered");
      const unknown = await app.inject({ method: "GET", url: `/v1/devices/${"22".repeat(16)}` });
      const unregistered = errorRegistry.JG_ERR_DEVICE_UNREGISTERED.httpStatus;
      expect(unknown.statusCode).toBe(unregistered);
      expectPhrase("The `GET` needs no token");
      expectPhrase(`an id the gateway does not know is answered ${unregistered} \`JG_ERR_DEVICE_UNREGISTERED\``);
    } finally {
      await app.close();
    }
  });

  it("slots: the default slot the document counts receipts and registrations in", () => {
    const program = new Command();
    registerStartCommand(program, {} as StackWiring);
    const slotMs = program.commands.find((c) => c.name() === "start")!.options.find((o) => o.long === "--slot-ms")!.defaultValue as number;
    expectPhrase(`the default slot is ${slotMs / 1000} s, \`jamgate start --slot-ms\``);
    expectPhrase(`1 to 2 slots after the PUBACK at the default ${slotMs / 1000} s slot`);
    expectPhrase(`At the default ${slotMs / 1000} s slot the lead`);
  });

  it("TLS: the test certificate the document shows is the one jamgate's tests make", () => {
    const source = readFileSync(new URL("../gateway/testing/tls.ts", import.meta.url), "utf8");
    const ext = /writeFileSync\(join\(dir, "server\.ext"\), "([^"]+)"\)/.exec(source)?.[1];
    expect(ext).toBeDefined();
    expectPhrase(`printf '${ext}' > server.ext`);
    expect(ext).toContain("IP:127.0.0.1");
  });

  it("the gateway's decoder reads and refuses what the document says", () => {
    const key = deviceKeyFromSecret(SEED);
    const body = encodeReadings(READINGS);
    const e = signEnvelope({ version: 1, device: key.deviceId, seq: 5, kind: "meter.reading", timeMs: TIME_MS, body }, key.secretKey);
    const wire = encodeEnvelope(e);
    const text = (t: string) => Uint8Array.from([0x60 + t.length, ...Buffer.from(t)]);
    const bytes = (b: Uint8Array) => Uint8Array.from([0x58, b.length, ...b]);
    const cat = (...parts: (Uint8Array | number[])[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
    const fromHex = (hex: string) => Uint8Array.from(Buffer.from(hex, "hex"));
    const entries = (over: Record<string, Uint8Array> = {}): [string, Uint8Array][] =>
      (
        [
          ["v", Uint8Array.of(0x01)],
          ["d", cat([0x78, 32], Buffer.from(key.deviceId))],
          ["s", Uint8Array.of(0x05)],
          ["k", text("meter.reading")],
          ["t", encodeCbor(TIME_MS)],
          ["b", bytes(body)],
          ["sig", bytes(e.signature)],
        ] as [string, Uint8Array][]
      ).map(([k, v]) => [k, over[k] ?? v]);
    const map = (es: [string, Uint8Array][], head = [0xa0 + es.length]) => cat(head, ...es.flatMap(([k, v]) => [text(k), v]));
    const read = (payload: Uint8Array) => decodeEnvelope(payload);
    const same = (payload: Uint8Array, seq = 5) => {
      const r = read(payload);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.envelope.seq).toBe(seq);
      expect(r.envelope.timeMs).toBe(TIME_MS);
      expect(Buffer.compare(r.envelope.body, body)).toBe(0);
      expect(Buffer.compare(signingBytes(r.envelope), signingBytes({ ...e, seq }))).toBe(0);
    };
    const refused = (payload: Uint8Array, seq: number | null) => {
      const r = read(payload);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.code).toBe("JG_ERR_ENVELOPE_MALFORMED");
      expect(r.error.seq).toBe(seq);
    };
    expect(Buffer.compare(map(entries()), wire)).toBe(0);

    // Read as the same envelope.
    same(map(entries().reverse()));
    const wideSeq = "1b0000000000000005";
    expectPhrase(`\`s\` 5 as \`${wideSeq}\``);
    same(map(entries({ s: fromHex(wideSeq) })));
    expectPhrase("a map head `b90007`");
    same(map(entries(), [0xb9, 0x00, 0x07]));
    expectPhrase("an indefinite-length map (`bf` … `ff`)");
    same(cat(map(entries(), [0xbf]), [0xff]));
    expectPhrase("tag 55799 (`d9d9f7`, self-described CBOR) before the map");
    same(cat(fromHex("d9d9f7"), wire));
    // Integral floats; a fraction is refused.
    const float64 = (x: number) => cat([0xfb], new Uint8Array(new Float64Array([x]).buffer).reverse());
    expectPhrase(`\`t\` as \`${toHex(float64(TIME_MS))}\``);
    same(map(entries({ t: float64(TIME_MS) })));
    same(map(entries({ s: fromHex("fa40a00000") }))); // single precision 5.0
    same(map(entries({ v: fromHex("f93c00") }))); // half precision 1.0
    refused(map(entries({ t: float64(TIME_MS + 0.5) })), 5);
    // A key twice: its last value.
    expectPhrase("| a key twice, e.g. 8 entries with `s` twice | its last value |");
    same(map([...entries(), ["s", Uint8Array.of(0x06)]]), 6);
    // Tags: 64 on a byte string is read as its bytes, any other is refused with the seq.
    same(map(entries({ b: cat([0xd8, 0x40], bytes(body)), sig: cat([0xd8, 0x40], bytes(e.signature)) })));
    expectPhrase(`\`b\` as tag 24, \`d818\` \`58${body.length.toString(16)}\` …`);
    refused(map(entries({ b: cat([0xd8, 0x18], bytes(body)) })), 5);
    refused(map(entries({ t: cat([0xc1], encodeCbor(TIME_MS)) })), 5);
    // Not CBOR: s null.
    expectPhrase("bytes after the map (one `00` is enough)");
    refused(cat(wire, [0x00]), null);
    const chunked = cat([0x5f], bytes(body.subarray(0, 10)), bytes(body.subarray(10)), [0xff]);
    refused(map(entries({ b: chunked })), null);
    refused(map(entries({ b: cat([0x5f], bytes(body), [0xff]) })), null);
    refused(map(entries({ k: cat([0x7f], text("meter."), text("reading"), [0xff]) })), null);
    refused(cat([0xa7], ...entries().flatMap(([k, v]) => [k === "s" ? bytes(Buffer.from("s")) : text(k), v])), null);
    refused(wire.subarray(0, wire.length - 1), null);
    refused(new Uint8Array(0), null);
    // The document no longer claims the gateway reads any well-formed CBOR.
    expect(doc).not.toContain("reads any well-formed CBOR");
  });

  it("readings in columns: t is not a column, each Δ is from the reading before, and may be negative but for a counter", () => {
    const columns = columnsOf(READINGS)!;
    expect(Object.keys(columns.cols)).not.toContain("t");
    const list = (name: string) => `[${columns.cols[name]!.join(", ")}]`;
    expectPhrase(
      `\`{t0: ${columns.t0}, dtMs: ${columns.dtMs}, cols: {importWh: ${list("importWh")}, exportWh: ${list("exportWh")}, powerW: ${list("powerW")}}}\``,
    );
    // Δ from the reading before, not from the first (the third reading's importWh differs).
    expect(columns.cols.importWh![2]).toBe(READINGS[2]!.importWh - READINGS[1]!.importWh);
    expect(columns.cols.importWh![2]).not.toBe(READINGS[2]!.importWh - READINGS[0]!.importWh);
    expect(columns.cols.powerW!.some((d) => d < 0)).toBe(true);
    expect(rowsOf(columns)).toEqual(READINGS);
    // The energy service reads the example, and refuses a counter's negative Δ as going backwards.
    expect(decodeMeterBody(encodeReadings(READINGS)).ok).toBe(true);
    const back = decodeMeterBody(encodeCbor({ ...columns, cols: { ...columns.cols, importWh: [1_204_339, 1, -1] } }));
    expect(back.ok).toBe(false);
    if (!back.ok) expect(back.error).toBe("counter-backwards");
    expectPhrase("refuses a negative Δ of `importWh` or `exportWh` as a counter going backwards (`JG_ERR_ENERGY_COUNTER`)");
    // Keys and columns in any order read the same.
    const reversed = { cols: Object.fromEntries(Object.entries(columns.cols).reverse()), dtMs: columns.dtMs, t0: columns.t0 };
    expect(rowsOf(reversed)).toEqual(READINGS.map((r) => ({ t: r.t, powerW: r.powerW, exportWh: r.exportWh, importWh: r.importWh })));
    const energy = decodeMeterBody(encodeCbor(reversed));
    expect(energy.ok && energy.value.map((r) => r.importWh)).toEqual(READINGS.map((r) => r.importWh));
    // What the SDK writes as rows instead.
    expect(columnsOf(READINGS.slice(0, 1))).toBeNull();
    expect(columnsOf([READINGS[0], { ...READINGS[1]!, powerW: 398.5 }])).toBeNull();
    expect(columnsOf([READINGS[0], READINGS[1], { ...READINGS[2]!, t: READINGS[2]!.t + 1 }])).toBeNull();
  });

  it("the energy-trading service's meter bounds", () => {
    expectPhrase(`\`METER_POWER_W_MAX\` (${n(METER_POWER_W_MAX)} W, \`services/energy-trading/condense.ts\`)`);
    expectPhrase(`\`energyWh × 3,600,000 ≤ ${n(METER_POWER_W_MAX)} × elapsedMs\``);
    const most = (elapsedMs: number) => {
      let wh = 0;
      while (!exceedsPower(wh + 1, elapsedMs)) wh++;
      return wh;
    };
    expectPhrase(`i.e. ${most(1_000)} Wh in a second, ${most(10_000)} Wh in ten`);
    expectPhrase(`a body of more than ${n(READINGS_PER_ENVELOPE_MAX)} readings, or a map of more than ${MAP_ENTRIES_MAX} entries`);
  });

  it("resending: replay within the window, too old below it", () => {
    const w = SEQ_WINDOW_SEQS;
    const h = 100;
    const all = { highest: h, below: (1n << BigInt(w)) - 1n };
    expect(judgeSeq(all, h - w)).toBe("replay");
    expect(judgeSeq(all, h)).toBe("replay");
    expect(judgeSeq(all, h - w - 1)).toBe("too-old");
    expect(judgeSeq({ highest: h, below: 0n }, h - w)).toBe("new");
    expectPhrase(`only while its seq is at most ${w} below the highest seq the gateway accepted from the device (H − ${w} … H)`);
    expectPhrase(`With H = ${h}: seqs ${h - w} to ${h} are judged by the window`);
    expectPhrase(`seq ${h - w - 1} and below are \`JG_ERR_ENVELOPE_SEQ\``);
    expectPhrase(`answered \`JG_ERR_ENVELOPE_REPLAY\` only while its seq is within ${w} below the highest the gateway accepted`);
  });
});

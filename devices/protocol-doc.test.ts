/**
 * docs/protocol.md against the code: every figure the document states that the code holds as a
 * constant is looked up in the document as an exact phrase built from that constant, and the
 * worked example is computed again. A constant that changes without the document fails here.
 * Outside implementers write devices from the document alone (issue 15, point 9), so its bytes
 * must be the code's.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { WINDOW_SEQS as SERVICE_WINDOW_SEQS } from "../services/common/window.ts";
import { FUTURE_TOLERANCE_MS } from "../gateway/accept.ts";
import { brokerLimits } from "../gateway/broker.ts";
import { DEFAULT_PORTS } from "../gateway/cli.ts";
import { gatewayLimits } from "../gateway/gateway.ts";
import { packetLimits } from "../gateway/packet-bounds.ts";
import { REGISTRATION_BATCH_MS } from "../gateway/registration.ts";
import { EMPTY_WINDOW, judgeSeq, SEQ_JUMP_MAX, SEQ_WINDOW } from "../gateway/window.ts";
import { TOKEN_LIFETIME_MS } from "./client.ts";
import { BODY_BYTES_MAX, ENVELOPE_BYTES_MAX, ENVELOPE_DOMAIN, ENVELOPE_KINDS, encodeEnvelope, signEnvelope, signingBytes, toHex } from "./envelope.ts";
import { deviceKeyFromSecret, mqttPassword, parseMqttPassword, TOKEN_LIFETIME_MAX_MS } from "./keys.ts";
import { DETAIL_CHARS_MAX, DOWN_MESSAGE_BYTES_MAX, RECEIPT_SEQS_MAX } from "./messages.ts";
import { encodeReadings } from "./readings.ts";

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
  { t: 1_767_225_540_000, importWh: 1_204_339, exportWh: 88_120 },
  { t: 1_767_225_541_000, importWh: 1_204_340, exportWh: 88_120 },
];
const TIME_MS = 1_767_225_541_000;

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
    expectPhrase(`| ${domain.length} | the ${domain.length - 1} octets \`${ascii(domain.subarray(0, -1))}\` (hex \`${toHex(domain.subarray(0, -1))}\`) and a zero octet |`);
    expectPhrase(`Ed25519-sign the ${message.length} bytes \`${toHex(domain.subarray(0, -1))}\` \`00\` (the ${domain.length - 1} octets \`${ascii(domain.subarray(0, -1))}\` and a zero octet)`);

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
    expectPhrase(`at most ${n(ENVELOPE_BYTES_MAX)} bytes. ([Envelopes](#envelopes))`);
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
    expect(SEQ_WINDOW).toBe(SERVICE_WINDOW_SEQS);
    const w = Number(SEQ_WINDOW);
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
    for (const r of READINGS) expectPhrase(`{t: ${r.t}, importWh: ${r.importWh}, exportWh: ${r.exportWh}}`);
  });
});

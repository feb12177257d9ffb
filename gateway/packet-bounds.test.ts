/**
 * MQTT packets bounded from their fixed header, before aedes buffers them; the connection cap and
 * the per-address rate applied as a socket is accepted (issue: "MQTT is bounded only after
 * authentication"). The scanner alone, then the gateway over raw TCP.
 */
import { connect, type Socket } from "node:net";
import { generate } from "mqtt-packet";
import { afterEach, describe, expect, it } from "vitest";
import { mqttPassword } from "../devices/keys.ts";
import { FixedHeaderScanner, packetLimits } from "./packet-bounds.ts";
import { type Harness, startHarness } from "./testing/harness.ts";
import { fixedHeader } from "./testing/mqtt-bytes.ts";

describe("FixedHeaderScanner", () => {
  it("reads headers across any chunking and lets packets up to their limit through", () => {
    const connectPacket = Buffer.concat([fixedHeader(1, packetLimits.connectBytesMax), Buffer.alloc(packetLimits.connectBytesMax)]);
    const publish = Buffer.concat([fixedHeader(3, packetLimits.publishBytesMax, 2), Buffer.alloc(packetLimits.publishBytesMax)]);
    const ping = fixedHeader(12, 0);
    const stream = Buffer.concat([connectPacket, publish, ping, publish]);
    // Headers split at every byte: a small stream one byte at a time, the large one in odd pieces.
    const small = Buffer.concat([
      fixedHeader(1, 5),
      Buffer.alloc(5),
      fixedHeader(3, 200, 2),
      Buffer.alloc(200),
      ping,
      fixedHeader(3, 16_384, 2),
      Buffer.alloc(16_384),
    ]);
    const oneByOne = new FixedHeaderScanner();
    for (let i = 0; i < small.length; i++) expect(oneByOne.scan(small.subarray(i, i + 1))).toBeNull();
    for (const size of [2, 3, 7, 1000, stream.length]) {
      const scanner = new FixedHeaderScanner();
      for (let i = 0; i < stream.length; i += size) expect(scanner.scan(stream.subarray(i, i + size))).toBeNull();
    }
  });

  it("refuses a header one byte past its type's limit, a first packet that is not a CONNECT, and a fifth length byte", () => {
    const over = (type: number, limit: number) => {
      const scanner = new FixedHeaderScanner();
      if (type !== 1) expect(scanner.scan(Buffer.concat([fixedHeader(1, 10), Buffer.alloc(10)]))).toBeNull();
      return scanner.scan(fixedHeader(type, limit + 1));
    };
    expect(over(1, packetLimits.connectBytesMax)).toEqual({
      kind: "oversize",
      packetType: 1,
      declaredBytes: packetLimits.connectBytesMax + 1,
      limitBytes: packetLimits.connectBytesMax,
    });
    expect(over(3, packetLimits.publishBytesMax)).toMatchObject({ kind: "oversize", packetType: 3 });
    expect(over(8, packetLimits.otherBytesMax)).toMatchObject({ kind: "oversize", packetType: 8 });
    // 256 MiB − 1, the most a Remaining Length holds: refused from its four length bytes.
    expect(new FixedHeaderScanner().scan(fixedHeader(1, 268_435_455))).toMatchObject({ kind: "oversize", declaredBytes: 268_435_455 });
    expect(new FixedHeaderScanner().scan(fixedHeader(3, 10, 2))).toEqual({ kind: "not-connect-first", packetType: 3 });
    expect(new FixedHeaderScanner().scan(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toEqual({ kind: "malformed-length" });
  });
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(options: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  const h = await startHarness(options);
  cleanups.push(() => h.stop());
  return h;
}

/** A raw TCP connection that records what it receives and when it closes. */
async function rawSocket(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = connect(port, "127.0.0.1");
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  cleanups.push(async () => socket.destroy());
  return { socket, received: () => Buffer.concat(chunks), closed };
}

describe("the gateway's packet bounds", () => {
  it("closes an unauthenticated socket whose CONNECT declares 256 MiB, from its header, while it is still sending", async () => {
    const h = await harness();
    const raw = await rawSocket(h.gateway.mqttPort);
    raw.socket.write(fixedHeader(1, 268_435_455));
    // The body follows in pieces; the server has closed long before 256 MiB could arrive.
    for (let i = 0; i < 64 && !raw.socket.destroyed && raw.socket.writable; i++) {
      raw.socket.write(Buffer.alloc(64 * 1024, 1));
      await new Promise((r) => setTimeout(r, 5));
    }
    await raw.closed;
    expect(h.gateway.errorStats().JG_ERR_MQTT_PACKET).toBe(1);
  });

  it("closes a device's connection at a PUBLISH header declaring 10 MB, before reading it, and its lines name the device and the bound", async () => {
    const lines: (Record<string, unknown> & { level: string; msg: string })[] = [];
    const capture = (level: string) => (o: object, msg: string) => lines.push({ level, ...o, msg });
    const h = await harness({ gateway: { logger: { info: capture("info"), warn: capture("warn"), error: capture("error") } } });
    const key = await h.register();
    const raw = await rawSocket(h.gateway.mqttPort);
    raw.socket.write(
      generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: true,
        clientId: key.deviceId,
        keepalive: 60,
        username: key.deviceId,
        password: Buffer.from(mqttPassword(key, Date.now() + 60_000)),
      }),
    );
    for (let i = 0; i < 500 && raw.received().length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    expect([...raw.received().subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x00]); // CONNACK accepted
    raw.socket.write(Buffer.concat([fixedHeader(3, 10_000_000, 2), Buffer.alloc(1024)]));
    await raw.closed;
    expect(h.gateway.errorStats().JG_ERR_MQTT_PACKET).toBe(1);
    expect(h.gateway.log.count).toBe(0);
    // The refusal names the device, and its disconnect line says why: the bound, not a lost connection.
    const refused = lines.filter((l) => l.msg === "device refused");
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({
      level: "warn",
      code: "JG_ERR_MQTT_PACKET",
      deviceId: key.deviceId,
      clientId: key.deviceId,
      protocol: "mqtt",
      violation: "oversize",
      declaredBytes: 10_000_000,
    });
    for (let i = 0; i < 500 && !lines.some((l) => l.msg === "device disconnected"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(lines.filter((l) => l.msg === "device disconnected")).toEqual([
      { level: "info", msg: "device disconnected", deviceId: key.deviceId, clientId: key.deviceId, reason: "bound violated" },
    ]);
  });

  it("closes a connection whose first packet is not a CONNECT", async () => {
    const h = await harness();
    const raw = await rawSocket(h.gateway.mqttPort);
    raw.socket.write(generate({ cmd: "publish", topic: "devices/x/up/meter.reading", payload: Buffer.alloc(10), qos: 0, retain: false, dup: false }));
    await raw.closed;
    expect(h.gateway.errorStats().JG_ERR_MQTT_PACKET).toBe(1);
  });

  it("counts sockets at accept: past the connection cap, a socket that has sent nothing gets CONNACK 3 and is closed", async () => {
    const h = await harness({ gateway: { limits: { connectionsMax: 2 } } });
    const idle = [await rawSocket(h.gateway.mqttPort), await rawSocket(h.gateway.mqttPort)];
    const third = await rawSocket(h.gateway.mqttPort);
    await third.closed;
    expect([...third.received()]).toEqual([0x20, 0x02, 0x00, 0x03]);
    expect(h.gateway.errorStats().JG_ERR_MQTT_CONNECTIONS).toBe(1);
    // The first two are still open: they were admitted.
    expect(idle.every((s) => !s.socket.destroyed)).toBe(true);
  });

  it("applies the per-address rate at accept, before a CONNECT is read", async () => {
    const h = await harness({ gateway: { limits: { connectsPerIp: { perSecond: 0.001, burst: 2 } } } });
    await rawSocket(h.gateway.mqttPort);
    await rawSocket(h.gateway.mqttPort);
    const third = await rawSocket(h.gateway.mqttPort);
    await third.closed;
    expect([...third.received()]).toEqual([0x20, 0x02, 0x00, 0x03]);
    expect(h.gateway.errorStats().JG_ERR_MQTT_RATE).toBe(1);
  });
});

/**
 * The RADIUS listener on a UDP port of 127.0.0.1, driven by FreeRADIUS's `radclient` (Debian
 * freeradius-utils; scripts/test.sh installs it when missing), with a fake accept path: what a
 * stock router's accounting does to it.
 */
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeCbor } from "../../devices/cbor.ts";
import { decodeEnvelope } from "../../devices/envelope.ts";
import { tempDir } from "../../node/testing/fixtures.ts";
import { answered, radclient } from "../testing/radclient.ts";
import { createRadiusRouter, type RadiusRouter } from "./routers.ts";
import { RadiusAccounting } from "./server.ts";
import { TEST_CLIENT_ID } from "./testing.ts";

let accounting: RadiusAccounting;
let router: RadiusRouter;
const taken: Record<string, unknown>[] = [];

beforeAll(async () => {
  const dir = tempDir();
  router = createRadiusRouter(dir);
  accounting = new RadiusAccounting({
    dataDir: dir,
    registry: new Registry(),
    accept: async (_id, _kind, bytes) => {
      const decoded = decodeEnvelope(bytes);
      if (!decoded.ok) throw new Error(decoded.error.detail);
      taken.push(decodeCbor(decoded.envelope.body) as Record<string, unknown>);
      return { ok: true };
    },
  });
  await accounting.listen(0, "127.0.0.1");
});

afterAll(async () => {
  await accounting?.close();
});

/** One Accounting-Request of the router sent by radclient, waiting `timeoutSeconds` for the answer. */
const send = (attributes: Record<string, string | number>, secret = router.sharedSecret, timeoutSeconds = 10) =>
  radclient(`127.0.0.1:${accounting.port}`, secret, { "NAS-Identifier": router.routerId, "User-Name": TEST_CLIENT_ID, ...attributes }, timeoutSeconds);

/** Sends as `send` does and expects an authentic answer; radclient's packets and errors are the failure's message. */
async function expectAnswered(attributes: Record<string, string | number>): Promise<void> {
  const sent = await send(attributes);
  expect(answered(sent), `radclient exited ${sent.exitCode}: ${sent.output}`).toBe(true);
}

describe("RADIUS accounting from radclient", { timeout: 120_000 }, () => {
  it("takes and answers Start, Interim-Update and Stop", async () => {
    const session = { "Acct-Session-Id": "5F3A-0001" };
    await expectAnswered({ ...session, "Acct-Status-Type": "Start" });
    await expectAnswered({
      ...session,
      "Acct-Status-Type": "Interim-Update",
      "Acct-Input-Octets": 1_000_000,
      "Acct-Output-Octets": 5_000_000,
      "Acct-Session-Time": 60,
    });
    const stop = await send({
      ...session,
      "Acct-Status-Type": "Stop",
      "Acct-Input-Octets": 2_000_000,
      "Acct-Output-Octets": 9_000_000,
      "Acct-Session-Time": 95,
      "Acct-Terminate-Cause": "User-Request",
    });
    expect(answered(stop), stop.output).toBe(true);
    expect(taken.map((b) => [b.status, b.inOctets, b.outOctets, b.seconds, b.cause])).toEqual([
      [1, 0, 0, 0, 0],
      [3, 1_000_000, 5_000_000, 60, 0],
      [2, 2_000_000, 9_000_000, 95, 1],
    ]);
    expect(accounting.stats().requests.taken).toBe(3);
  });

  it("does not answer a request under a wrong shared secret, and counts it", async () => {
    const before = taken.length;
    const sent = await send({ "Acct-Session-Id": "5F3A-0002", "Acct-Status-Type": "Start" }, "not-the-shared-secret-of-it", 1);
    expect(sent.exitCode).not.toBe(0);
    expect(sent.output).toMatch(/No reply/);
    expect(taken.length).toBe(before);
    expect(accounting.stats().refused.JG_ERR_RADIUS_AUTHENTICATOR).toBe(1);
  });

  it("answers a duplicate and counters going backwards, and takes neither", async () => {
    const session = { "Acct-Session-Id": "5F3A-0003" };
    await expectAnswered({ ...session, "Acct-Status-Type": "Start" });
    const before = taken.length;
    await expectAnswered({ ...session, "Acct-Status-Type": "Start" });
    await expectAnswered({ ...session, "Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 500, "Acct-Session-Time": 30 });
    await expectAnswered({ ...session, "Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 500, "Acct-Session-Time": 30 });
    await expectAnswered({ ...session, "Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 400, "Acct-Session-Time": 60 });
    expect(taken.length).toBe(before + 1);
    expect(accounting.stats().refused).toMatchObject({ JG_ERR_RADIUS_DUPLICATE: 2, JG_ERR_RADIUS_COUNTER: 1 });
  });

  it("combines Acct-Input-Gigawords with the wrapped counter: forward with them, backwards without", async () => {
    const session = { "Acct-Session-Id": "5F3A-0004" };
    await expectAnswered({ ...session, "Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 2 ** 32 - 100, "Acct-Session-Time": 600 });
    await expectAnswered({ ...session, "Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 50, "Acct-Input-Gigawords": 1, "Acct-Session-Time": 660 });
    const counterRefusals = accounting.stats().refused.JG_ERR_RADIUS_COUNTER ?? 0;
    // The same counter without its gigaword is 2^32 lower than the last: backwards.
    await expectAnswered({ ...session, "Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 60, "Acct-Session-Time": 720 });
    expect(accounting.stats().refused.JG_ERR_RADIUS_COUNTER).toBe(counterRefusals + 1);
    expect(taken.slice(-2).map((b) => [b.inOctets, b.inGigawords])).toEqual([
      [2 ** 32 - 100, 0],
      [50, 1],
    ]);
  });
});

import { describe, expect, it } from "vitest";
import { channelOf, subscriptionOf } from "./emitter.ts";

const P = "jamgate:0:";
const ID = "8bd2e2c759a71f012272930dd4c978db";

describe("what crosses Redis", () => {
  it("sends a device's down topics on its own channel, aedes' $SYS topics on theirs, and keeps up topics local", () => {
    expect(channelOf(`devices/${ID}/down/receipts`, P)).toBe(`${P}down:${ID}`);
    expect(channelOf(`devices/${ID}/down/errors`, P)).toBe(`${P}down:${ID}`);
    expect(channelOf(`devices/${ID}/down/control`, P)).toBe(`${P}down:${ID}`);
    expect(channelOf("$SYS/broker-1/new/clients", P)).toBe(`${P}$SYS/broker-1/new/clients`);
    expect(channelOf(`devices/${ID}/up/meter.reading`, P)).toBeNull();
    expect(channelOf("anything/else", P)).toBeNull();
  });

  it("subscribes a device's own filters to its channel (no Redis pattern per device), wildcards of others to every device's channel", () => {
    expect(subscriptionOf(`devices/${ID}/down/#`, P)).toEqual({ name: `${P}down:${ID}`, pattern: false });
    expect(subscriptionOf(`devices/${ID}/down/receipts`, P)).toEqual({ name: `${P}down:${ID}`, pattern: false });
    expect(subscriptionOf(`devices/${ID}/#`, P)).toEqual({ name: `${P}down:${ID}`, pattern: false });
    expect(subscriptionOf("devices/+/down/#", P)).toEqual({ name: `${P}down:*`, pattern: true });
    expect(subscriptionOf("#", P)).toEqual({ name: `${P}down:*`, pattern: true });
    // An up topic: nothing for it crosses Redis; its channel is never published on.
    expect(subscriptionOf(`devices/${ID}/up/meter.reading`, P)).toEqual({ name: `${P}local:devices/${ID}/up/meter.reading`, pattern: false });
  });

  it("subscribes aedes' $SYS filters as patterns of their own, a topic's glob characters escaped", () => {
    expect(subscriptionOf("$SYS/+/new/clients", P)).toEqual({ name: `${P}$SYS/*/new/clients`, pattern: true });
    expect(subscriptionOf("$SYS/sub/+", P)).toEqual({ name: `${P}$SYS/sub/*`, pattern: true });
    expect(subscriptionOf("$SYS/#", P)).toEqual({ name: `${P}$SYS*`, pattern: true });
    expect(subscriptionOf("$SYS/a*b/+", P)).toEqual({ name: `${P}$SYS/a\\*b/*`, pattern: true });
    expect(subscriptionOf("$SYS/x/heartbeat", P)).toEqual({ name: `${P}$SYS/x/heartbeat`, pattern: false });
  });

  it("routes every topic a subscription matches to a channel that subscription hears", () => {
    // Redis glob, as Redis matches a pattern (only *, escaped characters and literals occur here).
    const hears = (sub: { name: string; pattern: boolean }, channel: string) => {
      if (!sub.pattern) return sub.name === channel;
      const re = sub.name.replace(/\\(.)|([.+^${}()|[\]])|\*/g, (_, esc, special) => (esc ? `\\${esc}` : special ? `\\${special}` : ".*"));
      return new RegExp(`^${re}$`).test(channel);
    };
    const cases: [string, string][] = [
      [`devices/${ID}/down/#`, `devices/${ID}/down/receipts`],
      ["devices/+/down/#", `devices/${ID}/down/errors`],
      ["devices/+/down/receipts", `devices/${ID}/down/receipts`],
      ["#", `devices/${ID}/down/control`],
      ["$SYS/+/new/clients", "$SYS/b1/new/clients"],
      ["$SYS/sub/+", "$SYS/sub/add"],
      ["$SYS/#", "$SYS/b1/heartbeat"],
    ];
    for (const [filter, topic] of cases) expect(hears(subscriptionOf(filter, P), channelOf(topic, P)!), `${filter} hears ${topic}`).toBe(true);
  });
});

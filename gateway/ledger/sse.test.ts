/** The event stream parser of `jamgate ledger --follow` against the WHATWG rules it implements. */
import { describe, expect, it } from "vitest";
import { SSE_EVENT_CHARS_MAX, type SseEvent, SseParser } from "./sse.ts";

function parse(chunks: readonly string[]): { events: SseEvent[]; parser: SseParser } {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const chunk of chunks) parser.push(chunk);
  return { events, parser };
}

describe("SseParser", () => {
  it("reads named events with ids, multi-line data, comments, and LF, CRLF and CR line ends", () => {
    const text = ': hello\n\nevent: entry\nid: 7\ndata: {"a":1}\n\r\nevent:block\r\ndata:x\r\ndata: y\r\rdata: plain\n\n';
    const { events } = parse([text]);
    expect(events).toEqual([
      { event: "entry", data: '{"a":1}', lastEventId: "7" },
      { event: "block", data: "x\ny", lastEventId: "7" },
      { event: "message", data: "plain", lastEventId: "7" },
    ]);
  });

  it("gives the same events whichever way the text is cut, a CRLF split between chunks included", () => {
    const text = "event: entry\r\nid: 1\r\ndata: one\r\n\r\nevent: entry\r\nid: 2\r\ndata: two\r\n\r\nretry: 1500\r\n";
    const whole = parse([text]);
    for (let cut = 0; cut <= text.length; cut++) {
      const split = parse([text.slice(0, cut), text.slice(cut)]);
      expect(split.events, `cut at ${cut}`).toEqual(whole.events);
      expect(split.parser.retryMs).toBe(1500);
    }
    const byChar = parse([...text]);
    expect(byChar.events).toEqual(whole.events);
    expect(whole.events.map((e) => e.data)).toEqual(["one", "two"]);
  });

  it("dispatches nothing for an event without data, ignores an id holding NUL and unknown fields", () => {
    const { events } = parse(["id: 5\nevent: entry\n\nid: a\0b\nfoo: bar\ndata: d\n\n"]);
    expect(events).toEqual([{ event: "message", data: "d", lastEventId: "5" }]);
  });

  it("skips an event over SSE_EVENT_CHARS_MAX without holding it, and reads the next", () => {
    const big = "x".repeat(SSE_EVENT_CHARS_MAX / 4);
    const { events, parser } = parse(["event: entry\n", ...Array.from({ length: 5 }, () => `data: ${big}\n`), "\n", "event: entry\ndata: small\n\n"]);
    expect(events).toEqual([{ event: "entry", data: "small", lastEventId: "" }]);
    expect(parser.skipped).toBe(1);
  });
});

/**
 * A Server-Sent Events reader for `jamgate ledger --follow`: the event stream format of the WHATWG
 * HTML standard, §9.2.6 "Interpreting an event stream" (lines end in CRLF, LF or CR; `event`,
 * `data`, `id` and `retry` fields; a line starting with ":" is a comment; a blank line dispatches
 * the event; an `id` holding NUL is ignored). No `eventsource` package is installed, and the
 * parser is a few dozen lines; node:http(s) reads the stream, so a gateway with its own CA works
 * (`--ca`), which fetch cannot do without undici.
 */

export interface SseEvent {
  /** `message` when the event named none. */
  readonly event: string;
  readonly data: string;
  /** The last event id the stream set (it carries over to later events, as the standard says), "" before any. */
  readonly lastEventId: string;
}

/**
 * Largest event read (its data lines together): a ledger event is a view of one block, entry,
 * package or interval, a few KB; past this one is skipped (counted in `skipped`), not buffered.
 */
export const SSE_EVENT_CHARS_MAX = 4 * 1024 * 1024;

export class SseParser {
  private pending = "";
  private sawCr = false;
  private event = "";
  private data: string[] = [];
  private dataChars = 0;
  private oversized = false;
  private lastEventId = "";
  /** The stream's reconnection time (`retry:`), ms; null until it sends one. */
  retryMs: number | null = null;
  /** Events skipped for being over SSE_EVENT_CHARS_MAX. */
  skipped = 0;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  /** Feeds decoded text (a TextDecoder in stream mode keeps multi-byte characters whole across chunks). */
  push(text: string): void {
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // LF right after a CR ends nothing: CRLF is one line end.
      if (c === 10 && this.sawCr && i === start && this.pending === "") {
        this.sawCr = false;
        start = i + 1;
        continue;
      }
      this.line(this.pending + text.slice(start, i));
      this.pending = "";
      this.sawCr = c === 13;
      start = i + 1;
    }
    if (start < text.length) {
      this.sawCr = false;
      this.pending += text.slice(start);
      // A line that never ends is bounded like an event.
      if (this.pending.length > SSE_EVENT_CHARS_MAX) {
        this.pending = "";
        this.oversized = true;
      }
    }
  }

  private line(line: string): void {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.event = value;
        break;
      case "data":
        this.dataChars += value.length + 1;
        if (this.dataChars > SSE_EVENT_CHARS_MAX) this.oversized = true;
        if (!this.oversized) this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
      // Unknown fields are ignored.
    }
  }

  private dispatch(): void {
    const [event, data, oversized, hadData] = [this.event, this.data, this.oversized, this.dataChars > 0];
    this.event = "";
    this.data = [];
    this.dataChars = 0;
    this.oversized = false;
    if (oversized) {
      this.skipped++;
      return;
    }
    if (!hadData) return;
    this.onEvent({ event: event === "" ? "message" : event, data: data.join("\n"), lastEventId: this.lastEventId });
  }
}

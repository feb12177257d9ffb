/**
 * The gateway's HTTP API as the client commands reach it (`jamgate ledger`, `jamgate router …`,
 * `jamgate wifi …`): one request over node:http(s) (fetch takes no CA of its own), its answer
 * read within a bound, and the registry code of an error answer.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { type ErrorCode, errorRegistry } from "../devices/protocol/errors.ts";

/** Where the API is and what to send it (the operator token, when a command has it), and the CA to trust for https. */
export interface GatewayTarget {
  readonly base: string;
  readonly headers: Record<string, string>;
  readonly ca: Buffer | undefined;
}

export interface RequestOptions {
  readonly method?: "GET" | "POST" | "DELETE";
  readonly headers?: Record<string, string>;
  /** A JSON body (sent with content-type application/json). */
  readonly body?: unknown;
  /** No answer (for `untilHead`: no answer's head) within it fails the request. */
  readonly timeoutMs: number;
  /** The timeout holds until the answer's head only: an event stream then stays open as long as the gateway keeps it. */
  readonly untilHead?: boolean;
}

/** Sends one request; resolves with the answer (its body unread), rejects when the gateway cannot be reached or is silent. */
export function openRequest(target: GatewayTarget, path: string, options: RequestOptions): Promise<IncomingMessage> {
  const url = `${target.base}${path}`;
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers = { ...target.headers, ...options.headers, ...(payload === undefined ? {} : { "content-type": "application/json" }) };
  return new Promise((resolve, reject) => {
    const request = (url.startsWith("https:") ? httpsRequest : httpRequest)(
      url,
      { method: options.method ?? "GET", headers, ...(target.ca === undefined ? {} : { ca: target.ca }) },
      resolve,
    );
    request.setTimeout(options.timeoutMs, () => request.destroy(new Error(`no answer from ${url} within ${options.timeoutMs} ms`)));
    if (options.untilHead === true) request.on("response", () => request.setTimeout(0));
    request.on("error", (e) => reject(new Error(`cannot reach the gateway at ${url}: ${e.message}`)));
    request.end(payload);
  });
}

/** An answer's body as text, failing past `bytesMax` (a bound on what one answer may hold in memory). */
export function readBody(response: IncomingMessage, bytesMax: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    response.on("data", (c: Buffer) => {
      bytes += c.length;
      if (bytes > bytesMax) response.destroy(new Error(`answer over ${bytesMax} bytes`));
      else chunks.push(c);
    });
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", reject);
  });
}

/** The registry code of an API error body (`{error: {code}}`), or JG_ERR_RPC_REMOTE. */
export function errorCodeOf(text: string): ErrorCode {
  let given: unknown;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown } };
    given = body.error?.code;
  } catch {
    given = undefined;
  }
  return typeof given === "string" && given in errorRegistry ? (given as ErrorCode) : "JG_ERR_RPC_REMOTE";
}

/**
 * The device SDK (`import … from "jamgate/devices"`): keys, envelopes, readings, the MQTT client
 * with its offline queue, receipts and errors. TypeScript sources, as the rest of jamgate: run them
 * with tsx, or bundle them (esbuild, Vite). The modules marked "anywhere" in devices/README.md
 * import no Node built-ins and are also exported one by one (`jamgate/devices/envelope`, …) for a
 * browser bundle; the client and its queue need Node (files, sockets).
 */
export * from "./envelope.ts";
export * from "./keys.ts";
export * from "./readings.ts";
export * from "./messages.ts";
export * from "./errors.ts";
export * from "./wifi.ts";
export { encodeCbor, decodeCbor } from "./cbor.ts";
export { meterReadings, seededRandom, type MeterReading } from "./simulate.ts";
export * from "./offline-queue.ts";
export * from "./client.ts";

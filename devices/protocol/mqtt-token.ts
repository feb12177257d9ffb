/**
 * The bound on an MQTT password token's validity (docs/protocol.md): the gateway refuses a token
 * that expires further ahead. Made and read by ../keys.ts (which exports it too); apart from it so
 * that a command's `--ttl-ms` bound needs no Ed25519 code loaded (scripts/cli-startup.test.ts).
 */

/** Longest validity a gateway accepts: a day, so a leaked password is worth at most that. */
export const TOKEN_LIFETIME_MAX_MS = 24 * 60 * 60 * 1000;

/**
 * Key files out of the working directory (./key-files.ts): `jamgate device keygen` without --out,
 * run as a user runs it, writes the key under $XDG_CONFIG_HOME/jamgate/keys (0700, the file 0600)
 * and nothing in its working directory; the commands that read a key find it there without --key.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { decodeEnvelope, verifyEnvelope } from "./envelope.ts";
import { DEVICE_KEY_FILE_NAME, defaultKeyFile, KEY_FILE_MODE, KEYS_DIR_MODE, keysDir, prepareKeyDir, writeKeyFile } from "./key-files.ts";
import * as ed from "@noble/ed25519";
import { keyFromJson, parseMqttPassword } from "./keys.ts";

const run = promisify(execFile);
const JAMGATE_BIN = new URL("../scripts/jamgate.mjs", import.meta.url).pathname;
const tempDir = () => mkdtempSync(join(tmpdir(), "jg-keys-"));

/** `jamgate device …` as a process in `cwd`, its keys under `configHome`, none of the caller's JAMGATE_ variables. */
async function device(cwd: string, configHome: string, ...args: string[]): Promise<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("JAMGATE_")));
  const { stdout } = await run(process.execPath, [JAMGATE_BIN, "device", ...args], { cwd, env: { ...env, XDG_CONFIG_HOME: configHome }, timeout: 60_000 });
  return stdout;
}

describe("the keys dir", () => {
  it("is $XDG_CONFIG_HOME/jamgate/keys, or ~/.config/jamgate/keys when XDG_CONFIG_HOME is unset or relative", () => {
    expect(keysDir({ XDG_CONFIG_HOME: "/x/conf", HOME: "/home/u" })).toBe("/x/conf/jamgate/keys");
    expect(keysDir({ XDG_CONFIG_HOME: "conf", HOME: "/home/u" })).toMatch(/\/\.config\/jamgate\/keys$/);
    expect(defaultKeyFile(DEVICE_KEY_FILE_NAME, { XDG_CONFIG_HOME: "/x/conf" })).toBe("/x/conf/jamgate/keys/device.json");
  });

  it("is made 0700, and an existing one loses its group and other bits; a file elsewhere makes no dir", () => {
    const home = tempDir();
    const env = { XDG_CONFIG_HOME: home };
    const dir = keysDir(env);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    prepareKeyDir(join(dir, "a.json"), env);
    expect(statSync(dir).mode & 0o777).toBe(KEYS_DIR_MODE);
    const elsewhere = join(tempDir(), "sub", "k.json");
    prepareKeyDir(elsewhere, env);
    expect(() => statSync(join(elsewhere, ".."))).toThrow();
  });

  it("writeKeyFile writes 0600, refuses an existing file without force, and makes an overwritten one 0600", () => {
    const file = join(tempDir(), "k.json");
    writeFileSync(file, "{}", { mode: 0o644 });
    expect(() => writeKeyFile(file, { a: 1 }, false)).toThrow(/EEXIST/);
    writeKeyFile(file, { a: 1 }, true);
    expect(statSync(file).mode & 0o777).toBe(KEY_FILE_MODE);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ a: 1 });
  });
});

describe("jamgate device keygen without --out, as a process", () => {
  it("writes the key in the keys dir, not the working directory, and token and envelope find it without --key", async () => {
    const cwd = tempDir();
    const configHome = tempDir();
    const made = JSON.parse(await device(cwd, configHome, "keygen")) as { deviceId: string; keyFile: string };
    const file = join(configHome, "jamgate", "keys", DEVICE_KEY_FILE_NAME);
    expect(made.keyFile).toBe(file);
    expect(readdirSync(cwd)).toEqual([]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(configHome, "jamgate", "keys")).mode & 0o777).toBe(0o700);
    const key = keyFromJson(JSON.parse(readFileSync(file, "utf8")));
    expect(key.deviceId).toBe(made.deviceId);

    // `device token`: an MQTT password of that key.
    const token = (await device(cwd, configHome, "token")).trim();
    const parsed = parseMqttPassword(key.deviceId, token)!;
    expect(ed.verify(parsed.signature, parsed.message, key.publicKey)).toBe(true);

    // `device envelope`: signed by that key (its inputs and output named in the working directory, as a user does).
    writeFileSync(join(cwd, "r.jsonl"), '{"t":1,"importWh":5}\n');
    await device(cwd, configHome, "envelope", "--seq", "1", "--readings", "r.jsonl", "--out", "e.cbor");
    const envelope = decodeEnvelope(readFileSync(join(cwd, "e.cbor")));
    if (!envelope.ok) throw new Error(envelope.error.code);
    expect(envelope.envelope.device).toBe(key.deviceId);
    expect(verifyEnvelope(envelope.envelope, key.publicKey)).toBe(true);
    expect(readdirSync(cwd).sort()).toEqual(["e.cbor", "r.jsonl"]);
  });
});

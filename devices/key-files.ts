/**
 * Where the key files the `jamgate` commands write go unless a path is given: the user's config
 * dir, `$XDG_CONFIG_HOME/jamgate/keys/` (XDG Base Directory Specification: XDG_CONFIG_HOME when it
 * is an absolute path, else `~/.config`). Not the working directory, where a secret key shows up
 * untracked in a git checkout, one `git add .` away from being published. The dir is 0700 and each
 * key file 0600, as ssh keeps `~/.ssh`. Node only (files); the key format is keys.ts.
 */
import { chmodSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";

/** Mode of the keys dir: its owner's alone. */
export const KEYS_DIR_MODE = 0o700;
/** Mode of a key file: its owner's alone. */
export const KEY_FILE_MODE = 0o600;
/** The device key `jamgate device keygen` writes, and the `device` commands read, unless told. */
export const DEVICE_KEY_FILE_NAME = "device.json";

/** `$XDG_CONFIG_HOME/jamgate/keys`, or `~/.config/jamgate/keys` (a relative XDG_CONFIG_HOME is ignored, as the specification says). */
export function keysDir(env: NodeJS.ProcessEnv = process.env): string {
  const configHome = env.XDG_CONFIG_HOME;
  return join(configHome !== undefined && isAbsolute(configHome) ? configHome : join(homedir(), ".config"), "jamgate", "keys");
}

/** A key file's default path: `name` in the keys dir. */
export function defaultKeyFile(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(keysDir(env), name);
}

/**
 * Makes the keys dir (mode 0700; an existing one loses its group and other bits) when `file` is in
 * it. A file elsewhere goes where its path says, into a dir that must exist, as before.
 */
export function prepareKeyDir(file: string, env: NodeJS.ProcessEnv = process.env): void {
  const dir = keysDir(env);
  if (resolve(dirname(file)) !== resolve(dir)) return;
  mkdirSync(dir, { recursive: true, mode: KEYS_DIR_MODE });
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) !== 0) chmodSync(dir, mode & 0o700);
}

/**
 * Writes a key file as indented JSON, mode 0600; an existing file only with `force` (and made 0600:
 * an overwritten file keeps its old mode otherwise). The fs error is thrown as it is (EEXIST for an
 * existing file without `force`), for the command to word.
 */
export function writeKeyFile(path: string, json: object, force: boolean): void {
  prepareKeyDir(path);
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`, { mode: KEY_FILE_MODE, flag: force ? "w" : "wx" });
  chmodSync(path, KEY_FILE_MODE);
}

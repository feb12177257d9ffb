/**
 * Typed storage over a service's storage dictionary (GP 9.2) for one accumulate call: a cell under
 * a fixed key, or a keyed map of values under derived keys, each decoded with its descriptor
 * (codec.ts). A value is read from the host at most once per call (read-through), changed in
 * memory, and written back once at `flush` (a value set to null is deleted), so the host calls an
 * accumulate makes, and the gas they cost, do not grow with how often its items touch a key.
 *
 * Stored bytes that do not decode are a bug (only the service writes its storage): `get` throws,
 * as the hand-written caches it replaces did. Writes go out in creation order of the cells and
 * maps, each map's keys ascending, so a call's writes are deterministic.
 */
import type { AccumulateHost } from "../../node/service-api/index.ts";
import { toHex } from "./bytes.ts";
import { decode, type Descriptor, encode } from "./codec.ts";

/** The host calls a store needs. */
export type StoreHost = Pick<AccumulateHost, "read" | "write">;

/** One value under a fixed key. `get` throws (a bug) if the stored bytes do not decode. */
export interface Cell<T> {
  get(): T;
  set(value: T): void;
}

/** Values under keyOf(k); a value set to null is deleted at flush. */
export interface KeyedMap<K, T> {
  get(k: K): T | null;
  set(k: K, value: T | null): void;
  has(k: K): boolean;
}

interface Slot {
  readonly key: Uint8Array;
  /** The decoded value; null when absent (or deleted). */
  value: unknown;
  /** Whether the host had a value when read; null when set without being read. */
  stored: boolean | null;
  dirty: boolean;
}

/** The slots of one cell or map, by the hex of their storage key. */
class Region {
  readonly slots = new Map<string, Slot>();

  constructor(
    // biome-ignore lint/suspicious/noExplicitAny: a region holds one descriptor of any value type (Descriptor is invariant).
    readonly desc: Descriptor<any>,
    readonly initial: unknown,
  ) {}
}

export class Store {
  private readonly regions: Region[] = [];
  /** Storage keys (hex) already given to a region: two regions over one key would write it twice. */
  private readonly owners = new Map<string, Region>();

  constructor(
    private readonly host: StoreHost,
    /** Names the service in assertion messages. */
    private readonly serviceLabel: string,
  ) {}

  /** One value under a fixed key; `initial` when absent (or null when no initial given). */
  cell<T>(key: Uint8Array, desc: Descriptor<T>, initial: T): Cell<T>;
  cell<T>(key: Uint8Array, desc: Descriptor<T>): Cell<T | null>;
  cell<T>(key: Uint8Array, desc: Descriptor<T>, initial?: T): Cell<T | null> {
    const region = this.region(desc, initial === undefined ? null : initial);
    const hex = toHex(key);
    const fixedKey = key.slice();
    return {
      get: () => this.slot(region, hex, fixedKey).value as T | null,
      set: (value) => this.put(region, hex, fixedKey, value),
    };
  }

  /** Values under keyOf(k); k's identity for caching is keyOf(k)'s hex. */
  map<K, T>(keyOf: (k: K) => Uint8Array, desc: Descriptor<T>): KeyedMap<K, T> {
    const region = this.region(desc, null);
    return {
      get: (k) => {
        const key = keyOf(k);
        return this.slot(region, toHex(key), key).value as T | null;
      },
      set: (k, value) => {
        const key = keyOf(k);
        this.put(region, toHex(key), key, value);
      },
      has: (k) => {
        const key = keyOf(k);
        return this.slot(region, toHex(key), key).value !== null;
      },
    };
  }

  /** Writes every changed value once (a value set to null is deleted; one that was never stored is not written). */
  flush(): void {
    for (const region of this.regions) {
      const dirty = [...region.slots.entries()].filter(([, s]) => s.dirty).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [, slot] of dirty) {
        slot.dirty = false;
        if (slot.value === null) {
          if (slot.stored !== false) this.host.write(slot.key, null);
          slot.stored = false;
        } else {
          this.host.write(slot.key, encode(region.desc, slot.value));
          slot.stored = true;
        }
      }
    }
  }

  // biome-ignore lint/suspicious/noExplicitAny: as Region's descriptor.
  private region(desc: Descriptor<any>, initial: unknown): Region {
    const region = new Region(desc, initial);
    this.regions.push(region);
    return region;
  }

  private claim(region: Region, hex: string): void {
    const owner = this.owners.get(hex);
    if (owner === undefined) this.owners.set(hex, region);
    else if (owner !== region) throw new Error(`${this.serviceLabel}: storage key ${hex} is in two regions of one store`); // a bug
  }

  /** The slot of a key, read from the host (and decoded) the first time it is asked for. */
  private slot(region: Region, hex: string, key: Uint8Array): Slot {
    const cached = region.slots.get(hex);
    if (cached !== undefined) return cached;
    this.claim(region, hex);
    const raw = this.host.read(key);
    let value: unknown = region.initial;
    if (raw !== null) {
      const decoded = decode(region.desc, raw);
      if (!decoded.ok) throw new Error(`${this.serviceLabel}: stored ${region.desc.name} at ${hex} does not decode: ${decoded.error}`); // a bug: only the service writes it
      value = decoded.value;
    }
    const slot: Slot = { key: key.slice(), value, stored: raw !== null, dirty: false };
    region.slots.set(hex, slot);
    return slot;
  }

  /** Sets a key's value for flush; a key set before it is read is not read at all. */
  private put(region: Region, hex: string, key: Uint8Array, value: unknown): void {
    let slot = region.slots.get(hex);
    if (slot === undefined) {
      this.claim(region, hex);
      slot = { key: key.slice(), value, stored: null, dirty: true };
      region.slots.set(hex, slot);
      return;
    }
    slot.value = value;
    slot.dirty = true;
  }
}

import { afterEach, describe, expect, it } from "vitest";
import { JamgateError } from "../devices/protocol/errors.ts";
import type { WorkPackageStatus } from "./api.ts";
import { fromHex } from "./codec/jam.ts";
import { NEXT_STATUSES, PackageStatuses, type StatusChange, type StatusKind, SUBSCRIBERS_MAX, toStatus, transition } from "./status.ts";
import { type PackageRecord, Store } from "./storage/store.ts";
import { tempDir } from "./testing/fixtures.ts";

const HASH = "aa".repeat(32);
const REPORT = "bb".repeat(32);
const block = (slot: number) => ({ hash: slot.toString(16).padStart(64, "0"), slot });
const failure = { code: "JG_ERR_REFINE_PANIC", detail: "refine threw" } as const;

/** One change of each kind, for the transition grid. */
const CHANGES: Readonly<Record<StatusKind, StatusChange>> = {
  submitted: { kind: "submitted", core: 1 },
  refined: { kind: "refined", reportHash: REPORT },
  reported: { kind: "reported", reportHash: REPORT, block: block(3) },
  available: { kind: "available", block: block(4) },
  accumulated: { kind: "accumulated", block: block(4) },
  failed: { kind: "failed", error: failure },
};
const KINDS = Object.keys(CHANGES) as StatusKind[];

/** A record in status `kind`, as the path through the table leaves it. */
function recordIn(kind: StatusKind): PackageRecord {
  const path: Record<StatusKind, StatusKind[]> = {
    submitted: ["submitted"],
    refined: ["submitted", "refined"],
    reported: ["submitted", "refined", "reported"],
    available: ["submitted", "refined", "reported", "available"],
    accumulated: ["submitted", "refined", "reported", "available", "accumulated"],
    failed: ["submitted", "failed"],
  };
  return path[kind].reduce<PackageRecord | null>((r, k) => transition(HASH, r, CHANGES[k]), null)!;
}

describe("status transitions", () => {
  it("the table: submitted → refined → reported → available → accumulated, failed from any status before available, nothing after the last", () => {
    expect(NEXT_STATUSES).toEqual({
      none: ["submitted"],
      submitted: ["refined", "failed"],
      refined: ["refined", "reported", "failed"],
      reported: ["available", "failed"],
      available: ["accumulated"],
      accumulated: [],
      failed: [],
    });
  });

  it("allows exactly the table's transitions and throws on every other, naming both statuses", () => {
    let legal = 0;
    for (const from of ["none", ...KINDS] as const) {
      const current = from === "none" ? null : recordIn(from);
      for (const to of KINDS) {
        const move = () => transition(HASH, current, CHANGES[to]);
        if (NEXT_STATUSES[from].includes(to)) {
          expect(move().status).toBe(to);
          legal++;
        } else {
          expect(move, `${from} → ${to}`).toThrow(`package ${HASH}: illegal status transition ${from} → ${to}`);
        }
      }
    }
    expect(legal).toBe(9);
  });

  it("keeps what earlier statuses recorded: the accumulated status names the blocks that reported it, made it available and accumulated it", () => {
    const status = toStatus(recordIn("accumulated"));
    expect(status).toEqual({
      kind: "accumulated",
      core: 1,
      reportHash: fromHex(REPORT),
      reportedIn: { headerHash: fromHex(block(3).hash), slot: 3 },
      availableIn: { headerHash: fromHex(block(4).hash), slot: 4 },
      accumulatedIn: { headerHash: fromHex(block(4).hash), slot: 4 },
    });
    expect(toStatus(transition(HASH, recordIn("reported"), CHANGES.failed))).toEqual({ kind: "failed", code: "JG_ERR_REFINE_PANIC", detail: "refine threw" });
    // Refined again after a restart: the new report's hash replaces the old.
    expect(transition(HASH, recordIn("refined"), { kind: "refined", reportHash: "cc".repeat(32) }).reportHash).toBe("cc".repeat(32));
  });
});

describe("PackageStatuses", () => {
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  function open(): { store: Store; statuses: PackageStatuses } {
    const store = new Store(tempDir());
    stores.push(store);
    return { store, statuses: new PackageStatuses(store) };
  }

  it("stores each change before subscribers are told, and tells them every status in order", () => {
    const { store, statuses } = open();
    const seen: string[] = [];
    statuses.subscribe(HASH, (s) => seen.push(`${s.kind}/${store.packageRecord(HASH)?.status}`));
    statuses.submitted(HASH, 1, (record) => store.putPackage(record));
    statuses.change(HASH, { kind: "refined", reportHash: REPORT });
    const changes = statuses.forBlock();
    changes.move(fromHex(HASH), { kind: "reported", reportHash: REPORT, block: block(3) });
    expect(seen).toEqual(["submitted/submitted", "refined/refined"]); // a block's changes wait for the block to be written
    for (const record of changes.records.values()) store.putPackage(record);
    statuses.blockWritten(changes);
    expect(seen).toEqual(["submitted/submitted", "refined/refined", "reported/reported"]);
    expect(statuses.status(HASH)?.kind).toBe("reported");
  });

  it("a block's changes: each package's last record to store, every step to tell; a package it has no record of is left out", () => {
    const { statuses, store } = open();
    statuses.submitted(HASH, 1, (record) => store.putPackage(record));
    statuses.change(HASH, { kind: "refined", reportHash: REPORT });
    statuses.change(HASH, { kind: "failed", error: failure });
    const other = "cc".repeat(32);
    statuses.submitted(other, 0, (record) => store.putPackage(record));
    statuses.change(other, { kind: "refined", reportHash: REPORT });
    for (const kind of ["reported", "available"] as const) {
      const changes = statuses.forBlock();
      changes.move(fromHex(other), CHANGES[kind]);
      statuses.blockWritten(changes);
    }
    const changes = statuses.forBlock();
    changes.move(fromHex(other), CHANGES.accumulated);
    changes.move(fromHex("dd".repeat(32)), CHANGES.accumulated);
    expect([...changes.records.keys()]).toEqual([other]);
    expect(changes.steps.map((r) => r.status)).toEqual(["accumulated"]);
    // A failed package is never moved on, in a block or out of one.
    expect(() => statuses.forBlock().move(fromHex(HASH), CHANGES.reported)).toThrow(/illegal status transition failed → reported/);
    expect(() => statuses.change(HASH, CHANGES.refined)).toThrow(/illegal status transition failed → refined/);
    expect(store.packageRecord(HASH)?.status).toBe("failed");
  });

  it("records and tells nothing when the write of a submitted package fails, or when a change is illegal", () => {
    const { store, statuses } = open();
    const seen: WorkPackageStatus[] = [];
    statuses.subscribe(HASH, (s) => seen.push(s));
    expect(() =>
      statuses.submitted(HASH, 0, () => {
        throw new Error("MDB_MAP_FULL");
      }),
    ).toThrow("MDB_MAP_FULL");
    expect(() => statuses.change(HASH, CHANGES.failed)).toThrow(/illegal status transition none → failed/);
    expect(seen).toEqual([]);
    expect(statuses.record(HASH)).toBeNull();
    expect(store.packageRecord(HASH)).toBeNull();
  });

  it("follows at most SUBSCRIBERS_MAX packages; past it a subscription is refused with a coded error (JG_ERR_RPC_LIMIT)", () => {
    const { statuses } = open();
    const unsubscribes = Array.from({ length: SUBSCRIBERS_MAX }, (_, i) => statuses.subscribe(i.toString(16).padStart(64, "0"), () => {}));
    const refusal = (() => {
      try {
        statuses.subscribe(HASH, () => {});
      } catch (e) {
        return e;
      }
    })();
    expect(refusal).toBeInstanceOf(JamgateError);
    expect(refusal).toMatchObject({ code: "JG_ERR_RPC_LIMIT" });
    unsubscribes[0]!();
    expect(() => statuses.subscribe(HASH, () => {})).not.toThrow();
  });
});

/**
 * How the CLIs print a set of a device's seqs (`jamgate device receipts`, `jamgate ledger`). Apart
 * from ../messages.ts (which exports it too) so that printing needs no CBOR codec loaded.
 */

/** Ascending seqs as ranges, as the CLIs print a device's settled seqs: 0-5,7,9-11. */
export function seqRanges(seqs: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < seqs.length; ) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j]! + 1) j++;
    parts.push(j === i ? String(seqs[i]) : `${seqs[i]}-${seqs[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

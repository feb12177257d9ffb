/** Data availability's default bounds, in a module of their own so the command line reads them without loading the erasure coder. */

/** Default retention: a day of 6-second slots. Far past U = 5 slots, so no pending report loses its chunks. */
export const DEFAULT_RETENTION_SLOTS = 14_400;
/** Default bound on stored chunks: 8 GiB, about 190 full W_B bundles at the 3× coding rate. */
export const DEFAULT_DA_MAX_BYTES = 8 * 1024 ** 3;

/**
 * Intake of a submitted work package (GP 14.3 and 11.1.2, the checks a guarantor makes before
 * refining): size, decoding, item count, gas, authorization, services and anchor. Each failure
 * is a coded error; nothing is stored for a package that fails here.
 */
import { WorkPackage } from "@typeberry/lib/block";
import type { ChainParams } from "../chain/params.ts";
import { bytesEqual, decode } from "../codec/jam.ts";
import { codedError, err, ok, type Result } from "../../devices/protocol/errors.ts";
import { hash } from "../crypto/hash.ts";
import type { StateComponents } from "../state/components.ts";
import { ED25519_AUTHORIZER_CODE_HASH, verifyAuthorization } from "./authorizer.ts";

/** What intake needs to know about the chain: the state and recent blocks. */
export interface IntakeView {
  readonly state: StateComponents;
  readonly bestSlot: number;
  /** Slot and posterior state root of a known block, or null. */
  block(headerHash: Uint8Array): { readonly slot: number; readonly stateRoot: Uint8Array } | null;
}

export interface AcceptedPackage {
  readonly hash: Uint8Array;
  readonly core: number;
  readonly bytes: Uint8Array;
  readonly workPackage: WorkPackage;
}

export function checkWorkPackage(params: ChainParams, view: IntakeView, core: number, bytes: Uint8Array): Result<AcceptedPackage> {
  if (!Number.isInteger(core) || core < 0 || core >= params.coresCount)
    return err(codedError("JG_ERR_PACKAGE_CORE", `core ${core} is not in 0..${params.coresCount - 1}`));
  if (bytes.length > params.maxBundleBytes) return err(codedError("JG_ERR_PACKAGE_OVERSIZE", `${bytes.length} bytes > W_B = ${params.maxBundleBytes}`));
  let p: WorkPackage;
  try {
    p = decode(WorkPackage.Codec, bytes, params.spec);
  } catch (e) {
    return err(codedError("JG_ERR_PACKAGE_MALFORMED", e instanceof Error ? e.message : String(e)));
  }
  if (p.items.length < 1 || p.items.length > params.maxWorkItems)
    return err(codedError("JG_ERR_PACKAGE_ITEMS", `${p.items.length} items, allowed 1..${params.maxWorkItems}`));
  if (p.context.prerequisites.length > 0 || p.items.some((i) => i.importSegments.length > 0 || i.extrinsic.length > 0 || i.exportCount > 0)) {
    return err(codedError("JG_ERR_PACKAGE_UNSUPPORTED"));
  }
  let refineGas = 0n;
  let accumulateGas = 0n;
  for (const item of p.items) {
    refineGas += item.refineGasLimit;
    accumulateGas += item.accumulateGasLimit;
  }
  if (refineGas > params.refineGasPerPackage) return err(codedError("JG_ERR_PACKAGE_GAS", `refine gas ${refineGas} > G_R = ${params.refineGasPerPackage}`));
  if (accumulateGas > params.accumulateGasPerReport)
    return err(codedError("JG_ERR_PACKAGE_GAS", `accumulate gas ${accumulateGas} > G_A = ${params.accumulateGasPerReport}`));

  if (!bytesEqual(p.authCodeHash.raw, ED25519_AUTHORIZER_CODE_HASH)) return err(codedError("JG_ERR_AUTH_UNKNOWN_AUTHORIZER"));
  if (p.authConfiguration.length !== 32 || !verifyAuthorization(params, p, bytes)) return err(codedError("JG_ERR_AUTH_BAD_TOKEN"));
  for (const item of p.items) {
    const account = view.state.serviceAccount(item.service);
    if (account === null) return err(codedError("JG_ERR_SERVICE_UNKNOWN", `service ${item.service} does not exist`));
    if (!bytesEqual(account.codeHash.raw, item.codeHash.raw))
      return err(codedError("JG_ERR_SERVICE_CODE_HASH", `item for service ${item.service} names another code hash`));
    if (!view.state.isAuthorized(item.service, p.authConfiguration.raw)) {
      return err(codedError("JG_ERR_AUTH_NOT_AUTHORIZED", `key is not authorized for service ${item.service}`));
    }
  }

  const anchor = view.block(p.context.anchor.raw);
  if (anchor === null) return err(codedError("JG_ERR_PACKAGE_ANCHOR", "anchor is not a known block"));
  if (view.bestSlot - anchor.slot > params.maxAnchorAgeSlots)
    return err(codedError("JG_ERR_PACKAGE_ANCHOR", `anchor is ${view.bestSlot - anchor.slot} slots old, more than L = ${params.maxAnchorAgeSlots}`));
  if (!bytesEqual(anchor.stateRoot, p.context.stateRoot.raw))
    return err(codedError("JG_ERR_PACKAGE_ANCHOR", "context state root is not the anchor's posterior state root"));

  return ok({ hash: hash(bytes), core, bytes, workPackage: p });
}

/**
 * The telemetry service: generic ingestion of signed device envelopes and device registrations
 * (README.md). The gateway submits work items built with `types.ts`; refine condenses them,
 * accumulate settles each (device, seq) exactly once and records outcomes for receipts.
 */
import type { ServiceModule } from "../../node/service-api/index.ts";
import { accumulate } from "./accumulate.ts";
import { refine } from "./refine.ts";

/** The name the node derives the code hash from: H("jamgate-native:telemetry"). */
export const TELEMETRY_SERVICE_NAME = "telemetry";

const telemetry: ServiceModule = { name: TELEMETRY_SERVICE_NAME, refine, accumulate };
export default telemetry;

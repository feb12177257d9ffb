/**
 * The energy-trading service: households with solar panels trade energy per market interval
 * (README.md). The gateway submits meters' readings, agents' orders and registrations built with
 * `types.ts`; refine verifies and condenses them; accumulate clears a double auction per interval
 * on the chain's clock and settles it against what the meters measured.
 */
import type { ServiceModule } from "../../node/service-api/index.ts";
import { accumulate } from "./accumulate.ts";
import { refine } from "./refine.ts";

/** The name the node derives the code hash from: H("jamgate-native:energy-trading"). */
export const ENERGY_SERVICE_NAME = "energy-trading";

const energyTrading: ServiceModule = { name: ENERGY_SERVICE_NAME, refine, accumulate };
export default energyTrading;

/**
 * The wifi-billing service: community routers sell Wi-Fi access, clients pay per use from prepaid
 * balances, router owners are paid for metered, client-confirmed traffic (README.md). The gateway
 * submits routers' usage envelopes, registrations and operator actions built with `types.ts`;
 * refine verifies the routers' and clients' signatures and the voucher chains and condenses each
 * session's updates; accumulate bills them and keeps accounts, routers, sessions and the ledger.
 */
import type { ServiceModule } from "../../node/service-api/index.ts";
import { accumulate } from "./accumulate.ts";
import { WIFI_SERVICE_NAME } from "./payload.ts";
import { refine } from "./refine.ts";

/** The name the node derives the code hash from: H("jamgate-native:wifi-billing"). */
export { WIFI_SERVICE_NAME };

const wifiBilling: ServiceModule = { name: WIFI_SERVICE_NAME, refine, accumulate };
export default wifiBilling;

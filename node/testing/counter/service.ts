/**
 * The counter: the node's built-in test service. Small enough to check by hand, and it reaches
 * every path of the service API: signature checks in refine, storage, transfers, failures.
 */
import type { ServiceModule } from "../../service-api/index.ts";
import { accumulate } from "./accumulate.ts";
import { refine } from "./refine.ts";

const counter: ServiceModule = { name: "counter", refine, accumulate };
export default counter;

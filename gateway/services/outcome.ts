/** Reading a package's outcome (services/common/outcome.ts), the same for every ingest service. */
import { decodeOutcome, envelopeRejection, registrationRejection } from "../../services/common/outcome.ts";
import type { IngestService } from "../ingest-service.ts";

export const outcomeDecoders: Pick<IngestService, "decodeOutcome" | "decodeRegistrationOutcome"> = {
  decodeOutcome(value) {
    const outcome = decodeOutcome(value);
    if (!outcome.ok) return null;
    return (deviceId, seq) => envelopeRejection(outcome.value, deviceId, seq);
  },
  decodeRegistrationOutcome(value) {
    const outcome = decodeOutcome(value);
    if (!outcome.ok) return null;
    return (deviceId) => registrationRejection(outcome.value, deviceId);
  },
};

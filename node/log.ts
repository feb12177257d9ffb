/** The node's logger: the subset of pino it uses (`jamgate start` passes a pino child; benches and tests their own). */
export interface NodeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: NodeLogger = { info() {}, warn() {}, error() {} };

/** aedes-persistence-redis ships no types: the factory this gateway calls (cluster/persistence.ts), with the options it passes. */
declare module "aedes-persistence-redis" {
  import type { Redis } from "ioredis";
  /** An aedes persistence (aedes-persistence's CallBackPersistence over Redis), on the connection given. */
  export default function aedesPersistenceRedis(options: { readonly conn: Redis; readonly maxSessionDelivery?: number }): object;
}

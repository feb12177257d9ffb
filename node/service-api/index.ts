/** What services may import from the node: the service API and nothing else. */
export * from "./gas.ts";
export * from "./service.ts";

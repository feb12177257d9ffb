#!/usr/bin/env node
// The `jamgate` command. jamgate is TypeScript run from source: this launcher registers tsx
// (esbuild-based, no build step, so a fresh clone runs as it is) and loads the CLI.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./cli.ts");
await main(process.argv);

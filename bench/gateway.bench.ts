import { runGatewayBench } from "./gateway.js";
import type { Benchmark } from "./run.js";

/** Picked up by `npm run bench` (bench/run.ts). */
export const bench: Benchmark = { name: "gateway", run: runGatewayBench };

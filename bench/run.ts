/**
 * `npm run bench`: runs every benchmark module in bench/ (files exporting `bench: Benchmark`)
 * and prints their figures and ratios. Benchmarks measure; they never assert, and figures are
 * only comparable within one run on one machine (see each module for what it compares).
 */
import { readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface Benchmark {
  name: string;
  /** Runs the benchmark and prints its figures; returns them for the summary. */
  run(): Promise<Record<string, number | string>>;
}

const dir = fileURLToPath(new URL(".", import.meta.url));
const only = process.argv.slice(2);

async function main(): Promise<void> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".bench.ts"))
    .sort();
  const summary: Record<string, Record<string, number | string>> = {};
  for (const file of files) {
    const mod = (await import(pathToFileURL(`${dir}${file}`).href)) as { bench?: Benchmark };
    if (!mod.bench) continue;
    if (only.length > 0 && !only.some((o) => mod.bench?.name.includes(o))) continue;
    console.log(`\n=== ${mod.bench.name} ===`);
    summary[mod.bench.name] = await mod.bench.run();
  }
  console.log("\n=== summary ===");
  for (const [name, figures] of Object.entries(summary)) {
    for (const [k, v] of Object.entries(figures)) console.log(`${name}  ${k}: ${v}`);
  }
  process.exit(0);
}

await main();

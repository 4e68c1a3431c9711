import { runMain } from "../../mesh/service-host.js";
import { productionGateway } from "./service.js";

try {
  await runMain(await productionGateway());
} catch (err) {
  process.stderr.write(`gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

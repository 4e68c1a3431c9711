import { runMain } from "../../mesh/service-host.js";
import { gatewayDefinition } from "./service.js";

await runMain(gatewayDefinition);

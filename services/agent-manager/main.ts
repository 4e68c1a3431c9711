import { runMain } from "../../mesh/service-host.js";
import { agentManagerService } from "./service.js";

await runMain(agentManagerService);

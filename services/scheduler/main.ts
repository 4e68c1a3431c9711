import { runMain } from "../../mesh/service-host.js";
import { schedulerService } from "./service.js";

await runMain(schedulerService);

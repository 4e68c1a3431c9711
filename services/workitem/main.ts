import { runMain } from "../../mesh/service-host.js";
import { workitemService } from "./service.js";

await runMain(workitemService);

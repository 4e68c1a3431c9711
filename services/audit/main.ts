import { runMain } from "../../mesh/service-host.js";
import { auditService } from "./service.js";

await runMain(auditService);

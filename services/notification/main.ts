import { runMain } from "../../mesh/service-host.js";
import { notificationService } from "./service.js";

await runMain(notificationService);

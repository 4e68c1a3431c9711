import { runMain } from "../../mesh/service-host.js";
import { projectService } from "./service.js";

await runMain(projectService);

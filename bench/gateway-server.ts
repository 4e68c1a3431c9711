/**
 * The gateway as its own process for bench/gateway.ts, so its peak RSS is its own. Started with
 * AGENT_MANAGER_ADDR set; prints `{"grpcPort":…,"httpPort":…,"ownPort":…}` once serving (ownPort:
 * the gateway's own server, where Envoy's ext_authz Check is answered); stops on SIGTERM.
 * Uses the test security parts (every caller admitted, no rate limit): the bench measures the
 * forwarding path, not authentication.
 */
import { gatewayService } from "../services/gateway/service.js";
import { startUpstream } from "../services/gateway/testing/harness.js";
import { testSecurity } from "../services/gateway/testing/test-security.js";

const security = testSecurity();
// The test authorizer keeps every call it saw, for assertions; here that is only a growing heap
// that no production gateway has.
security.authorizer.record = false;
const def = gatewayService({ security });
const gateway = await startUpstream(def, {
  env: {
    GATEWAY_GRPC_PORT: "0",
    GATEWAY_HTTP_PORT: "0",
    AGENT_MANAGER_ADDR: process.env.AGENT_MANAGER_ADDR ?? "",
    LOG_LEVEL: "error",
  },
});
process.stdout.write(
  `${JSON.stringify({
    grpcPort: def.frontDoors.grpcPort,
    httpPort: def.frontDoors.httpPort,
    ownPort: gateway.running.port,
  })}\n`,
);
process.once("SIGTERM", () => {
  gateway.cleanup().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

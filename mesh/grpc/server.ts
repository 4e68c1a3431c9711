import type { DescService } from "@bufbuild/protobuf";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";
import type { Logger } from "../logging.js";
import { addReflection } from "./reflection.js";
import { type AdapterHooks, adaptService } from "./server-adapter.js";
import type { ServiceImpl } from "./types.js";

/** Options of a service's gRPC server. */
export interface GrpcServerOptions {
  logger: Logger;
  /** Records one finished RPC (method path, status code name, seconds). */
  observe?: AdapterHooks["observe"];
  /** Secret verifying gateway-forwarded principals (see principal-token.ts). */
  principalSecret?: string | undefined;
  /** Largest request message accepted, bytes (default 4 MiB). */
  maxReceiveMessageBytes?: number;
}

/**
 * One gRPC server per service process, with health (starting NOT_SERVING until the service
 * says its dependencies are ready) and reflection built in. `stop()` first reports
 * NOT_SERVING, then lets in-flight calls finish within the grace time, then forces.
 */
export class GrpcServer {
  readonly health = new HealthImplementation({ "": "NOT_SERVING" });
  private readonly server: Server;
  private readonly services: DescService[] = [];
  private readonly hooks: AdapterHooks;
  private boundPort: number | undefined;

  constructor(private readonly opts: GrpcServerOptions) {
    this.server = new Server({
      "grpc.max_receive_message_length": opts.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 5_000,
    });
    this.hooks = {
      logger: opts.logger,
      observe: opts.observe ?? (() => {}),
      principalSecret: opts.principalSecret,
    };
    this.health.addToServer(this.server);
  }

  /** Registers a service implementation; call before start(). */
  add<S extends DescService>(service: S, impl: ServiceImpl<S>): this {
    const { definition, implementation } = adaptService(service, impl, this.hooks);
    this.server.addService(definition, implementation);
    this.services.push(service);
    this.health.setStatus(service.typeName, "NOT_SERVING");
    return this;
  }

  /** Binds the port (0 picks a free one) and starts serving; health stays NOT_SERVING. */
  async start(port: number, host = "0.0.0.0"): Promise<number> {
    addReflection(this.server, this.services);
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    this.opts.logger.info(
      { port: this.boundPort, services: this.services.map((s) => s.typeName) },
      "gRPC server listening",
    );
    return this.boundPort;
  }

  /** The port bound by start(). */
  get port(): number {
    if (this.boundPort === undefined) throw new Error("server not started");
    return this.boundPort;
  }

  /** Sets the overall and per-service health status. */
  setServing(status: ServingStatus): void {
    this.health.setStatus("", status);
    for (const s of this.services) this.health.setStatus(s.typeName, status);
  }

  /** NOT_SERVING, then graceful drain for up to graceMs, then force. */
  async stop(graceMs = 10_000): Promise<void> {
    this.setServing("NOT_SERVING");
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.opts.logger.warn({ graceMs }, "grace time over: cancelling in-flight calls");
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

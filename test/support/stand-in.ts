/**
 * Stand-ins for services a test does not run: a real gRPC server (mesh GrpcServer) answering the
 * methods a test implements and UNIMPLEMENTED for every other one.
 */
import type { DescService } from "@bufbuild/protobuf";
import { Code, ServiceError } from "../../mesh/errors.js";
import { GrpcServer } from "../../mesh/grpc/server.js";
import type { ServiceImpl } from "../../mesh/grpc/types.js";
import { createLogger } from "../../mesh/logging.js";

/** `impl`, with every method it leaves out answering UNIMPLEMENTED (streaming ones too). */
export function withUnimplemented<S extends DescService>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
  who = "the stand-in",
): ServiceImpl<S> {
  const out: Record<string, unknown> = {};
  for (const m of service.methods) {
    const refuse = () => new ServiceError(Code.UNIMPLEMENTED, `${m.name} is not implemented by ${who}`);
    const streamsOut = m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming";
    out[m.localName] = streamsOut
      ? async function* () {
          yield* [];
          throw refuse();
        }
      : async () => {
          throw refuse();
        };
  }
  return { ...out, ...impl } as ServiceImpl<S>;
}

/** A stand-in server on 127.0.0.1 with a free port, verifying principals with `secret`. */
export class StandInServer {
  readonly #server: GrpcServer;
  #port = 0;

  constructor(name: string, secret: string) {
    this.#server = new GrpcServer({
      logger: createLogger({ service: name, level: "warn" }),
      principalSecret: secret,
    });
  }

  add<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>): this {
    this.#server.add(service, withUnimplemented(service, impl));
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  async start(): Promise<void> {
    this.#port = await this.#server.start(0, "127.0.0.1");
    this.#server.setServing("SERVING");
  }

  async stop(): Promise<void> {
    await this.#server.stop(1_000);
  }
}

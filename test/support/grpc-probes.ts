import { createRequire } from "node:module";
import { credentials, loadPackageDefinition, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";

const require = createRequire(import.meta.url);

type Ctor = ServiceClientConstructor;
type Callable = Record<string, (...args: unknown[]) => unknown> & { close(): void };

/** Asks a server's standard grpc.health.v1 service, as a load balancer or kubelet would. */
export async function checkHealth(address: string, service = ""): Promise<string> {
  const def = loadPackageDefinition(loadSync(healthProtoPath, { enums: String }));
  const Health = (def.grpc as { health: { v1: { Health: Ctor } } }).health.v1.Health;
  const client = new Health(address, credentials.createInsecure()) as unknown as Callable;
  try {
    return await new Promise<string>((resolve, reject) =>
      client.Check!({ service }, (err: Error | null, res: { status: string }) =>
        err ? reject(err) : resolve(res.status),
      ),
    );
  } finally {
    client.close();
  }
}

/** Lists services through gRPC server reflection v1, as grpcurl does. */
export async function listServicesByReflection(address: string): Promise<string[]> {
  const protoFile = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
  const def = loadPackageDefinition(loadSync(protoFile));
  const Reflection = (def.grpc as { reflection: { v1: { ServerReflection: Ctor } } }).reflection.v1
    .ServerReflection;
  const client = new Reflection(address, credentials.createInsecure()) as unknown as Callable;
  try {
    const call = client.ServerReflectionInfo!() as NodeJS.ReadWriteStream & { end(): void };
    const res = await new Promise<{ listServicesResponse?: { service: { name: string }[] } }>(
      (resolve, reject) => {
        call.on("data", resolve);
        call.on("error", reject);
        call.write({ listServices: "*" } as never);
      },
    );
    call.end();
    return (res.listServicesResponse?.service ?? []).map((s) => s.name);
  } finally {
    client.close();
  }
}

/** Asks reflection for the file declaring a symbol; resolves to the number of descriptors returned. */
export async function reflectSymbol(address: string, symbol: string): Promise<number> {
  const protoFile = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
  const def = loadPackageDefinition(loadSync(protoFile));
  const Reflection = (def.grpc as { reflection: { v1: { ServerReflection: Ctor } } }).reflection.v1
    .ServerReflection;
  const client = new Reflection(address, credentials.createInsecure()) as unknown as Callable;
  try {
    const call = client.ServerReflectionInfo!() as NodeJS.ReadWriteStream & { end(): void };
    const res = await new Promise<{
      fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
      errorResponse?: unknown;
    }>((resolve, reject) => {
      call.on("data", resolve);
      call.on("error", reject);
      call.write({ fileContainingSymbol: symbol } as never);
    });
    call.end();
    return res.fileDescriptorResponse?.fileDescriptorProto.length ?? 0;
  } finally {
    client.close();
  }
}

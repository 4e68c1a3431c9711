import { type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { Server } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";

/**
 * Serves gRPC server reflection (v1 and v1alpha) for our services so generic tools (grpcurl,
 * Postman, Kreya) can discover and call them. @grpc/reflection expects a proto-loader package
 * definition; it only reads `fileDescriptorProtos`, so we hand it the FileDescriptorProtos that
 * protobuf-es embeds in generated code, with every transitive dependency.
 */
export function addReflection(server: Server, services: DescService[]): void {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    for (const dep of file.dependencies) visit(dep);
  };
  for (const s of services) visit(s.file);
  const fileDescriptorProtos = [...files.values()].map((f) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)),
  );
  const packageDefinition = { "codex.descriptors": { fileDescriptorProtos } };
  const reflection = new ReflectionService(
    packageDefinition as unknown as ConstructorParameters<typeof ReflectionService>[0],
    {
      services: services.map((s) => s.typeName),
    },
  );
  reflection.addToServer(server);
}

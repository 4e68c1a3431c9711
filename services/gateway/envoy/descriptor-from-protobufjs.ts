import type { DescFile } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { nestedTypes, protoCamelCase } from "@bufbuild/protobuf/reflect";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
  FileDescriptorProto,
  FileDescriptorSet,
} from "@bufbuild/protobuf/wkt";
import {
  DescriptorProtoSchema,
  EnumDescriptorProtoSchema,
  EnumValueDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
  MessageOptionsSchema,
  OneofDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import protobuf from "protobufjs";

/**
 * Converts a protobufjs `Root` into a protobuf-es `FileDescriptorSet`, one FileDescriptorProto per
 * source file, in dependency order.
 *
 * Why not `protobufjs/ext/descriptor`: it emits one file per *package* with relative type names,
 * no JSON names, no map-entry suffix and no dependencies, which protobuf-es cannot register
 * (Envoy packages reference each other both ways). Only what JSON decoding needs is kept: types,
 * fields, oneofs, maps, enums and JSON names. Options (PGV rules, annotations) are dropped — that
 * is how the too-old PGV `validate.proto` stops mattering.
 */
export function toFileDescriptorSet(
  root: protobuf.Root,
  relativize: (path: string) => string,
): FileDescriptorSet {
  const files = new FileCollector(relativize);
  files.collect(root);
  return create(FileDescriptorSetSchema, { file: [...WKT_FILES.map((f) => f.proto), ...files.sorted()] });
}

/** protobuf-es already carries the well-known types; protobufjs builds them without file names. */
const WKT_FILES: readonly DescFile[] = [
  file_google_protobuf_any,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
  file_google_protobuf_type, // after any, source_context
  file_google_protobuf_api, // after source_context, type
];

const WKT_FILE_BY_TYPE = new Map<string, string>(
  WKT_FILES.flatMap((file) => [...nestedTypes(file)].map((t) => [t.typeName, file.proto.name] as const)),
);

const T = FieldDescriptorProto_Type;
const SCALARS: Readonly<Record<string, FieldDescriptorProto_Type>> = {
  double: T.DOUBLE,
  float: T.FLOAT,
  int64: T.INT64,
  uint64: T.UINT64,
  int32: T.INT32,
  fixed64: T.FIXED64,
  fixed32: T.FIXED32,
  bool: T.BOOL,
  string: T.STRING,
  bytes: T.BYTES,
  uint32: T.UINT32,
  sfixed32: T.SFIXED32,
  sfixed64: T.SFIXED64,
  sint32: T.SINT32,
  sint64: T.SINT64,
};

interface FileEntry {
  readonly proto: FileDescriptorProto;
  readonly deps: Set<string>;
}

class FileCollector {
  readonly #files = new Map<string, FileEntry>();

  constructor(private readonly relativize: (path: string) => string) {}

  /** Walks packages; each top-level message or enum lands in the file that declared it. */
  collect(ns: protobuf.NamespaceBase): void {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum) {
        if (nested.fullName.startsWith(".google.protobuf.")) continue;
        const entry = this.#file(nested, ns.fullName.replace(/^\./, ""));
        if (nested instanceof protobuf.Type) entry.proto.messageType.push(this.#message(nested, entry));
        else entry.proto.enumType.push(enumProto(nested));
      } else if (nested instanceof protobuf.Namespace) {
        this.collect(nested);
      }
    }
  }

  /** Files in an order where every file follows the files it depends on. */
  sorted(): FileDescriptorProto[] {
    const out: FileDescriptorProto[] = [];
    const done = new Set<string>();
    const visit = (name: string): void => {
      const entry = this.#files.get(name);
      if (done.has(name) || entry === undefined) return;
      done.add(name);
      for (const dep of entry.deps) visit(dep);
      entry.proto.dependency = [...entry.deps].sort();
      out.push(entry.proto);
    };
    for (const name of [...this.#files.keys()].sort()) visit(name);
    return out;
  }

  #file(obj: protobuf.ReflectionObject, pkg: string): FileEntry {
    const name = this.#fileName(obj);
    let entry = this.#files.get(name);
    if (entry === undefined) {
      const syntax = editionOf(obj) === "proto2" ? "proto2" : "proto3";
      entry = { proto: create(FileDescriptorProtoSchema, { name, package: pkg, syntax }), deps: new Set() };
      this.#files.set(name, entry);
    }
    return entry;
  }

  #fileName(obj: protobuf.ReflectionObject): string {
    const wkt = WKT_FILE_BY_TYPE.get(obj.fullName.replace(/^\./, ""));
    if (wkt !== undefined) return wkt;
    if (obj.filename === null) throw new Error(`${obj.fullName} has no source file`);
    return this.relativize(obj.filename);
  }

  #message(type: protobuf.Type, file: FileEntry): DescriptorProto {
    const msg = create(DescriptorProtoSchema, { name: type.name });
    const oneofs = orderedOneofs(type);
    msg.oneofDecl = oneofs.map((o) => create(OneofDescriptorProtoSchema, { name: o.name }));
    for (const field of type.fieldsArray) {
      if (field.declaringField !== null) continue; // a copy protobufjs adds for extensions
      const proto = this.#field(field, file);
      if (field.partOf !== null) proto.oneofIndex = oneofs.indexOf(field.partOf);
      if (field instanceof protobuf.MapField) msg.nestedType.push(this.#mapEntry(field, proto, file));
      msg.field.push(proto);
    }
    for (const nested of type.nestedArray) {
      if (nested instanceof protobuf.Type) msg.nestedType.push(this.#message(nested, file));
      else if (nested instanceof protobuf.Enum) msg.enumType.push(enumProto(nested));
    }
    return msg;
  }

  #field(field: protobuf.FieldBase, file: FileEntry): FieldDescriptorProto {
    const jsonName = field.options?.json_name;
    const proto = create(FieldDescriptorProtoSchema, {
      name: field.name,
      number: field.id,
      jsonName: typeof jsonName === "string" ? jsonName : protoCamelCase(field.name),
      label:
        field.repeated || field.map
          ? FieldDescriptorProto_Label.REPEATED
          : FieldDescriptorProto_Label.OPTIONAL,
      proto3Optional: field.options?.proto3_optional === true,
    });
    if (field.map) {
      proto.type = T.MESSAGE;
      return proto; // typeName is set by #mapEntry
    }
    this.#setType(proto, field.type, field.resolvedType, file);
    return proto;
  }

  /** Maps are repeated `<Name>Entry {key = 1; value = 2}` messages, named as protoc names them. */
  #mapEntry(field: protobuf.MapField, proto: FieldDescriptorProto, file: FileEntry): DescriptorProto {
    const name = `${upperFirst(protoCamelCase(field.name))}Entry`;
    proto.typeName = `${field.parent?.fullName ?? ""}.${name}`;
    const label = FieldDescriptorProto_Label.OPTIONAL;
    const key = create(FieldDescriptorProtoSchema, { name: "key", number: 1, jsonName: "key", label });
    this.#setType(key, field.keyType, null, file);
    const value = create(FieldDescriptorProtoSchema, { name: "value", number: 2, jsonName: "value", label });
    this.#setType(value, field.type, field.resolvedType, file);
    return create(DescriptorProtoSchema, {
      name,
      field: [key, value],
      options: create(MessageOptionsSchema, { mapEntry: true }),
    });
  }

  #setType(
    proto: FieldDescriptorProto,
    typeName: string,
    resolved: protobuf.Type | protobuf.Enum | null,
    file: FileEntry,
  ): void {
    if (resolved === null) {
      const scalar = SCALARS[typeName];
      if (scalar === undefined) throw new Error(`unresolved type ${typeName} in ${file.proto.name}`);
      proto.type = scalar;
      return;
    }
    proto.type = resolved instanceof protobuf.Enum ? T.ENUM : T.MESSAGE; // no groups in the Envoy API
    proto.typeName = resolved.fullName;
    const dep = this.#fileName(resolved);
    if (dep !== file.proto.name) file.deps.add(dep);
  }
}

/** protoc puts synthetic proto3-optional oneofs after the real ones; protobuf-es relies on it. */
function orderedOneofs(type: protobuf.Type): protobuf.OneOf[] {
  const real = type.oneofsArray.filter((o) => !o.isProto3Optional);
  const synthetic = type.oneofsArray.filter((o) => o.isProto3Optional);
  return [...real, ...synthetic];
}

function enumProto(e: protobuf.Enum): EnumDescriptorProto {
  return create(EnumDescriptorProtoSchema, {
    name: e.name,
    value: Object.entries(e.values).map(([name, number]) =>
      create(EnumValueDescriptorProtoSchema, { name, number }),
    ),
  });
}

/** protobufjs records `syntax`/`edition` on top-level objects only, as a private property. */
function editionOf(obj: protobuf.ReflectionObject): unknown {
  return Reflect.get(obj, "_edition");
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

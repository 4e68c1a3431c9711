import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";

/** Marks a request that could not be decoded; the adapter answers it with INVALID_ARGUMENT. */
export class MalformedMessage {
  constructor(
    readonly typeName: string,
    readonly reason: string,
  ) {}
}

/**
 * grpc-js serializer/deserializer pair for a protobuf-es message type. Decoding never throws
 * (grpc-js would turn that into INTERNAL); a malformed payload becomes a MalformedMessage the
 * adapter turns into INVALID_ARGUMENT.
 */
export function serverCodec<D extends DescMessage>(
  desc: D,
): {
  deserialize: (buf: Buffer) => MessageShape<D> | MalformedMessage;
  serialize: (msg: unknown) => Buffer;
} {
  return {
    deserialize: (buf: Buffer) => {
      try {
        return fromBinary(desc, buf);
      } catch (err) {
        return new MalformedMessage(desc.typeName, err instanceof Error ? err.message : String(err));
      }
    },
    serialize: (msg: unknown) => Buffer.from(toBinary(desc, create(desc, msg as never))),
  };
}

/** Client-side codec: requests may be init shapes, responses are full messages. */
export function clientCodec<I extends DescMessage, O extends DescMessage>(input: I, output: O) {
  return {
    serialize: (msg: unknown) => Buffer.from(toBinary(input, create(input, msg as never))),
    deserialize: (buf: Buffer): MessageShape<O> => fromBinary(output, buf),
  };
}

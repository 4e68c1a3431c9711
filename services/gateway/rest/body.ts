import type { IncomingMessage } from "node:http";
import { Code } from "../../../mesh/errors.js";
import { HttpError } from "./http-errors.js";

/**
 * Reads a request body up to `limit` bytes. A larger body — announced by Content-Length or
 * discovered while reading — is refused with 413 without buffering it; the rest is discarded and
 * the connection closed after the answer (`Connection: close`), so a client cannot make the
 * gateway read an endless upload.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(413, Code.RESOURCE_EXHAUSTED, `request body exceeds the limit of ${limit} bytes`, {
      connection: "close",
    });
  return new Promise((resolve, reject) => {
    if (Number(req.headers["content-length"] ?? "0") > limit) {
      req.resume();
      return reject(tooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (!refused) resolve(Buffer.concat(chunks));
    });
    req.once("error", reject);
  });
}

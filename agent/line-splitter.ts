/**
 * Turns a child's output bytes into lines for the run log. Bytes are decoded as UTF-8 across
 * chunk boundaries (a character split between two reads stays whole); a line longer than
 * `maxLineBytes` is emitted in pieces so one runaway line cannot hold the whole output back.
 */
import { StringDecoder } from "node:string_decoder";

export class LineSplitter {
  readonly #decoder = new StringDecoder("utf8");
  #partial = "";

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxLineChars = 16 * 1024,
  ) {}

  push(chunk: Buffer): void {
    const text = this.#partial + this.#decoder.write(chunk);
    const lines = text.split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#emitLine(line);
    while (this.#partial.length >= this.maxLineChars) {
      this.emit(this.#partial.slice(0, this.maxLineChars));
      this.#partial = this.#partial.slice(this.maxLineChars);
    }
  }

  /** Emits what is left (a last line without newline). */
  end(): void {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = "";
    if (rest !== "") this.#emitLine(rest);
  }

  #emitLine(line: string): void {
    const clean = line.endsWith("\r") ? line.slice(0, -1) : line;
    for (let at = 0; at < clean.length || at === 0; at += this.maxLineChars) {
      this.emit(clean.slice(at, at + this.maxLineChars));
      if (clean.length === 0) break;
    }
  }
}

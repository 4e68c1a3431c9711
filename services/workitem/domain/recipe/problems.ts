import { LineCounter } from "yaml";
import type { RecipeProblem } from "./types.js";

/**
 * Accumulates problems with 1-based positions resolved through the {@link LineCounter} that
 * the parser fills as it meets line breaks (problems are added after the text they refer to
 * has been read, so the counter already knows their line).
 * It stops accepting problems after `max` (adding one final note) so that a document made
 * of thousands of mistakes still produces a small, fast answer.
 */
export class ProblemCollector {
  /** Fed by the YAML parser (`new Parser(lines.addNewLine)`); already knows line 1. */
  readonly lines = new LineCounter();
  readonly #problems: RecipeProblem[] = [];
  readonly #max: number;
  #truncated = false;

  constructor(max: number) {
    this.#max = max;
    this.lines.addNewLine(0);
  }

  /** Records a problem at a character offset of the source text. */
  add(path: string, offset: number, message: string): void {
    if (this.#truncated) return;
    if (this.#problems.length >= this.#max) {
      this.#truncated = true;
      this.#problems.push(this.#at("", offset, `too many problems; stopped after the first ${this.#max}`));
      return;
    }
    this.#problems.push(this.#at(path, offset, message));
  }

  /** True once the cap is reached: callers stop doing work whose only output is problems. */
  get full(): boolean {
    return this.#truncated;
  }

  get count(): number {
    return this.#problems.length;
  }

  /** Problems in source order (then path order), which is how a reader scans a file. */
  list(): RecipeProblem[] {
    const body = this.#truncated ? this.#problems.slice(0, -1) : [...this.#problems];
    body.sort((a, b) => a.line - b.line || a.column - b.column);
    const note = this.#truncated ? this.#problems.at(-1) : undefined;
    return note ? [...body, note] : body;
  }

  #at(path: string, offset: number, message: string): RecipeProblem {
    const pos = this.lines.linePos(Math.max(0, offset));
    return { path, line: pos.line, column: pos.col, message };
  }
}

const MAX_QUOTED = 40;

/**
 * Quotes user text for a message, shortened: a 16 KiB key must not become a 16 KiB error.
 */
export function quote(text: string): string {
  const short = text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text;
  return JSON.stringify(short);
}

/**
 * `{{path}}` templates (Subscription.template, EmailChannel.subject_template). Pure.
 *
 * Only `{{` opens a placeholder and the nearest `}}` closes it, so single braces and stray `}}`
 * outside placeholders are literal text: JSON bodies (`{"a":{"b":"{{event.id}}"}}`) need no
 * escaping. A `{{` without its `}}`, a `{{` inside a placeholder, an empty or malformed path and
 * an unknown root are errors. Values are inserted verbatim; objects and lists as JSON.
 */

/** Roots a placeholder path may start with. */
export const TEMPLATE_ROOTS = ["event", "payload", "subscription", "alert"] as const;
export type TemplateRoot = (typeof TEMPLATE_ROOTS)[number];

type Part = { text: string } | { path: readonly string[] };

/** A parsed template, ready to render many times. */
export interface CompiledTemplate {
  readonly parts: readonly Part[];
  /** Roots the template uses, e.g. to refuse `alert.` on a subscription without an alert rule. */
  readonly roots: ReadonlySet<TemplateRoot>;
}

/** A problem in a template, with the 0-based character offset where it starts. */
export interface TemplateProblem {
  offset: number;
  message: string;
}

export type CompileResult =
  | { ok: true; template: CompiledTemplate }
  | { ok: false; problem: TemplateProblem };

const SEGMENT = /^[A-Za-z0-9_]+$/;

function isRoot(s: string): s is TemplateRoot {
  return (TEMPLATE_ROOTS as readonly string[]).includes(s);
}

/** Parses a template, stopping at the first problem. */
export function compileTemplate(source: string): CompileResult {
  const parts: Part[] = [];
  const roots = new Set<TemplateRoot>();
  let pos = 0;
  while (pos < source.length) {
    const open = source.indexOf("{{", pos);
    if (open < 0) {
      parts.push({ text: source.slice(pos) });
      break;
    }
    if (open > pos) parts.push({ text: source.slice(pos, open) });
    const close = source.indexOf("}}", open + 2);
    if (close < 0) return { ok: false, problem: { offset: open, message: "'{{' is never closed by '}}'" } };
    const inner = source.slice(open + 2, close);
    if (inner.includes("{{")) {
      return { ok: false, problem: { offset: open, message: "'{{' opened again before '}}' closed it" } };
    }
    const path = inner.trim().split(".");
    const [root] = path;
    if (inner.trim() === "" || !path.every((s) => SEGMENT.test(s))) {
      return {
        ok: false,
        problem: { offset: open, message: `bad placeholder '{{${inner}}}': expected {{root.field.path}}` },
      };
    }
    if (root === undefined || !isRoot(root) || path.length < 2) {
      return {
        ok: false,
        problem: {
          offset: open,
          message: `unknown placeholder root in '{{${inner}}}': use one of ${TEMPLATE_ROOTS.map((r) => `${r}.`).join(", ")}`,
        },
      };
    }
    roots.add(root);
    parts.push({ path });
    pos = close + 2;
  }
  return { ok: true, template: { parts, roots } };
}

/** Values placeholders resolve against; each root is a JSON-like tree. */
export type TemplateContext = Partial<Record<TemplateRoot, unknown>>;

/** Follows a path through objects (by key) and lists (by index); undefined when absent. */
export function lookup(ctx: TemplateContext, path: readonly string[]): unknown {
  let cur: unknown = ctx;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else {
      if (!Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return cur;
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value);
  return JSON.stringify(value);
}

/** Renders a compiled template; absent paths render as "". */
export function renderTemplate(template: CompiledTemplate, ctx: TemplateContext): string {
  let out = "";
  for (const part of template.parts) out += "text" in part ? part.text : stringify(lookup(ctx, part.path));
  return out;
}

/** Compiles and renders in one step, for templates validated when they were stored. */
export function render(source: string, ctx: TemplateContext): string {
  const r = compileTemplate(source);
  if (!r.ok) throw new Error(`invalid template at ${r.problem.offset}: ${r.problem.message}`);
  return renderTemplate(r.template, ctx);
}

/** Email subjects are one line: line breaks (and the spaces around them) become one space. */
export function singleLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

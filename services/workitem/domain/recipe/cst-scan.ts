import type { CST } from "yaml";

/** A YAML feature recipes do not use, found in the concrete syntax tree. */
export interface CstFinding {
  readonly kind: "tag" | "anchor" | "alias";
  readonly offset: number;
  readonly source: string;
  /** Offset of the node a tag or anchor belongs to, so the problem can name its path. */
  readonly ownerOffset: number;
}

/** What {@link scanCstDocument} found; `tooDeepAt` is set when the scan stopped early. */
export interface CstScan {
  readonly findings: readonly CstFinding[];
  readonly tooDeepAt?: number;
}

interface Frame {
  readonly token: CST.Token;
  readonly depth: number;
}

/**
 * Walks one CST document, without recursion, looking for tags, anchors and aliases, and
 * measuring collection nesting exactly. It runs before the composer turns tokens into
 * nodes, because the composer recurses once per nesting level and resolves tags: refusing
 * here means hostile structure never reaches code that could exhaust the stack.
 *
 * Stops at the first collection deeper than `maxDepth`, reporting its offset as `tooDeepAt`.
 */
export function scanCstDocument(doc: CST.Document, maxDepth: number): CstScan {
  const findings: CstFinding[] = [];
  const props = (tokens: readonly CST.Token[] | undefined, owner: CST.Token | null | undefined): void => {
    for (const t of tokens ?? []) {
      if (t.type === "tag" || t.type === "anchor") {
        findings.push({
          kind: t.type,
          offset: t.offset,
          source: t.source,
          ownerOffset: owner?.offset ?? t.offset,
        });
      }
    }
  };
  props(doc.start, doc.value);
  const stack: Frame[] = doc.value ? [{ token: doc.value, depth: 0 }] : [];
  for (let frame = stack.pop(); frame; frame = stack.pop()) {
    const { token, depth } = frame;
    switch (token.type) {
      case "block-map":
      case "block-seq":
      case "flow-collection": {
        if (depth + 1 > maxDepth) return { findings, tooDeepAt: token.offset };
        for (const item of token.items) {
          props(item.start, item.key ?? item.value);
          props(item.sep, item.value);
          if (item.key) stack.push({ token: item.key, depth: depth + 1 });
          if (item.value) stack.push({ token: item.value, depth: depth + 1 });
        }
        break;
      }
      case "block-scalar":
        props(token.props, token);
        break;
      case "alias":
        findings.push({
          kind: "alias",
          offset: token.offset,
          source: token.source,
          ownerOffset: token.offset,
        });
        break;
      default:
        break;
    }
  }
  return { findings };
}

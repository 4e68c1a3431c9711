import { isMap, isNode, isScalar, isSeq } from "yaml";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_WALK = 64;

/**
 * Appends a map key to a problem path. Identifier-like keys read naturally
 * (`tools[0].env.HOME`); anything else is bracket-quoted so the path stays unambiguous.
 */
export function childKey(parent: string, key: string): string {
  if (IDENTIFIER.test(key)) return parent ? `${parent}.${key}` : key;
  const shown = key.length > 40 ? `${key.slice(0, 40)}…` : key;
  return `${parent}[${JSON.stringify(shown)}]`;
}

/** Appends a list index to a problem path. */
export function childIndex(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/**
 * The recipe path of the deepest node containing `offset`, used to give the YAML library's
 * own errors (duplicate keys, syntax slips) the same `path` vocabulary as ours.
 * Iterative and bounded: its input has already passed the depth check.
 */
export function pathAt(root: unknown, offset: number): string {
  let path = "";
  let node = root;
  for (let step = 0; step < MAX_WALK; step++) {
    if (isMap(node)) {
      const pair = node.items.find((p) => contains(p.key, offset) || contains(p.value, offset));
      if (!pair) return path;
      path = childKey(path, isScalar(pair.key) ? String(pair.key.value) : "?");
      if (contains(pair.key, offset)) return path;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => contains(item, offset));
      if (index < 0) return path;
      path = childIndex(path, index);
      node = node.items[index];
    } else {
      return path;
    }
  }
  return path;
}

function contains(node: unknown, offset: number): boolean {
  if (!isNode(node) || !node.range) return false;
  const [start, , end] = node.range;
  return start <= offset && offset < Math.max(end, start + 1);
}

import { isAlias, isMap, isSeq } from "yaml";
import { describeValue, offsetOf, type ReadContext, readStrictMap } from "./fields.js";
import { childIndex, childKey } from "./path.js";
import { quote } from "./problems.js";
import { readStep } from "./step.js";
import { readTool } from "./tool.js";
import type { ParsedRecipe, Step, Tool } from "./types.js";

type ItemReader<T> = (ctx: ReadContext, node: unknown, path: string, fallbackOffset: number) => T | undefined;

/**
 * Reads the top-level map of a composed recipe. Lists longer than their limit are refused
 * without reading their items: the count alone is the problem, and it keeps the work (and
 * the problem list) small for oversized input.
 */
export function readRecipe(ctx: ReadContext, root: unknown): ParsedRecipe | undefined {
  if (isAlias(root)) return undefined;
  if (!isMap(root)) {
    ctx.problems.add(
      "",
      offsetOf(root, 0),
      `a recipe must be a map with tools and steps, got ${describeValue(root)}`,
    );
    return undefined;
  }
  const fields = readStrictMap(ctx, root, "", ["tools", "steps"], 0);
  if (!fields) return undefined;

  const toolsEntry = fields.get("tools");
  const tools = toolsEntry
    ? readList(ctx, toolsEntry.value, "tools", toolsEntry.keyOffset, ctx.limits.maxTools, readTool)
    : [];
  if (tools) reportDuplicateNames(ctx, toolsEntry?.value, tools);

  const stepsEntry = fields.get("steps");
  if (!stepsEntry) {
    ctx.problems.add("steps", offsetOf(root, 0), "is required; a recipe needs at least one step");
    return undefined;
  }
  const steps = readList<Step>(
    ctx,
    stepsEntry.value,
    "steps",
    stepsEntry.keyOffset,
    ctx.limits.maxSteps,
    readStep,
  );
  if (steps?.length === 0) {
    ctx.problems.add(
      "steps",
      offsetOf(stepsEntry.value, stepsEntry.keyOffset),
      "must contain at least one step",
    );
    return undefined;
  }
  return tools && steps ? { tools, steps } : undefined;
}

function readList<T>(
  ctx: ReadContext,
  node: unknown,
  path: string,
  keyOffset: number,
  max: number,
  readItem: ItemReader<T>,
): T[] | undefined {
  if (isAlias(node)) return undefined;
  const at = offsetOf(node, keyOffset);
  if (!isSeq(node)) {
    ctx.problems.add(path, at, `must be a list, got ${describeValue(node)}`);
    return undefined;
  }
  if (node.items.length > max) {
    ctx.problems.add(path, at, `has ${node.items.length} entries; at most ${max} are allowed`);
    return undefined;
  }
  const items: T[] = [];
  let valid = true;
  node.items.forEach((item, index) => {
    const read = readItem(ctx, item, childIndex(path, index), at);
    if (read === undefined) valid = false;
    else items.push(read);
  });
  return valid ? items : undefined;
}

/**
 * Two entries for one tool would leave the agent to pick a version or checksum; names are
 * compared case-insensitively because agents may install onto case-insensitive filesystems.
 */
function reportDuplicateNames(ctx: ReadContext, list: unknown, tools: readonly Tool[]): void {
  if (!isSeq(list)) return;
  const firstIndex = new Map<string, number>();
  tools.forEach((tool, index) => {
    const key = tool.name.toLowerCase();
    const first = firstIndex.get(key);
    if (first === undefined) {
      firstIndex.set(key, index);
      return;
    }
    const item = list.items[index];
    const nameNode = isMap(item) ? item.get("name", true) : undefined;
    ctx.problems.add(
      childKey(childIndex("tools", index), "name"),
      offsetOf(nameNode, offsetOf(item, 0)),
      `tool ${quote(tool.name)} is already declared at tools[${first}]`,
    );
  });
}

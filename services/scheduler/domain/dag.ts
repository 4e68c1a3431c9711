/**
 * Dependency graph of work items: an edge A -> B means "A waits for B to be DONE".
 *
 * Why a pure function over an edge lookup: the scheduler keeps the edges of live tasks in
 * Postgres and checks a new task's edges under a per-project lock; keeping the search itself
 * free of I/O makes it testable on hand-built graphs (diamonds, long chains, self-loops).
 */

/**
 * The cycle that adding `item -> dependsOn[]` would close, as a path starting and ending with
 * `item` (e.g. ["A", "B", "C", "A"]), or undefined when the graph stays acyclic.
 * `edgesOf(x)` returns x's existing dependencies. Iterative DFS, each node visited once, so
 * diamonds cost nothing extra and deep chains cannot overflow the stack.
 */
export function findCycle(
  item: string,
  dependsOn: readonly string[],
  edgesOf: (workItemId: string) => readonly string[],
): string[] | undefined {
  const parent = new Map<string, string>();
  const visited = new Set<string>();
  const stack: string[] = [];
  for (const d of dependsOn) {
    if (d === item) return [item, item];
    if (!visited.has(d)) {
      visited.add(d);
      parent.set(d, item);
      stack.push(d);
    }
  }
  while (stack.length > 0) {
    const node = stack.pop() as string;
    for (const next of edgesOf(node)) {
      if (next === item) return pathBack(parent, node, item);
      if (visited.has(next)) continue;
      visited.add(next);
      parent.set(next, node);
      stack.push(next);
    }
  }
  return undefined;
}

function pathBack(parent: Map<string, string>, last: string, item: string): string[] {
  const path = [last];
  let at = last;
  while (at !== item) {
    at = parent.get(at) as string;
    path.push(at);
  }
  path.reverse();
  path.push(item);
  return path;
}

/** Dependencies listed once each, in first-seen order. */
export function uniqueDependencies(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/**
 * Which agent gets a run. Pure: the dispatcher feeds it what it knows about connected agents.
 *
 * A run's agent_selector must match exactly ("os" and "region" match Agent.os/region, other keys
 * the labels); the agent must offer every tool of the recipe (a capability without versions
 * installs any version); an agent that rejected the run is not offered it again. Among eligible
 * agents with free capacity the least loaded wins: lowest running/capacity, then fewest running
 * runs, then the one that waited longest since its last assignment (spreads equal agents).
 */

/** What matching needs to know about an agent. */
export interface AgentProfile {
  id: string;
  labels: Readonly<Record<string, string>>;
  os: string;
  region: string;
  /** Tool name -> versions offered (empty = any). */
  tools: ReadonlyMap<string, readonly string[]>;
}

/** What matching needs to know about a run. */
export interface RunNeeds {
  selector: Readonly<Record<string, string>>;
  tools: readonly { name: string; version: string }[];
  rejectedBy: readonly string[];
}

/** Load of an agent at the moment of choice. */
export interface AgentLoad {
  id: string;
  running: number;
  capacity: number;
  lastAssignedAt: number;
}

function selectorValue(agent: AgentProfile, key: string): string | undefined {
  if (key === "os") return agent.os || agent.labels.os;
  if (key === "region") return agent.region || agent.labels.region;
  return agent.labels[key];
}

/** Whether `agent` may run a run with `needs`. */
export function isEligible(agent: AgentProfile, needs: RunNeeds): boolean {
  if (needs.rejectedBy.includes(agent.id)) return false;
  for (const [key, value] of Object.entries(needs.selector)) {
    if (selectorValue(agent, key) !== value) return false;
  }
  for (const tool of needs.tools) {
    const versions = agent.tools.get(tool.name);
    if (versions === undefined) return false;
    if (versions.length > 0 && tool.version !== "" && !versions.includes(tool.version)) return false;
  }
  return true;
}

/** Negative when `a` should be preferred over `b`. */
export function compareLoad(a: AgentLoad, b: AgentLoad): number {
  const ra = a.running / a.capacity;
  const rb = b.running / b.capacity;
  if (ra !== rb) return ra - rb;
  if (a.running !== b.running) return a.running - b.running;
  if (a.lastAssignedAt !== b.lastAssignedAt) return a.lastAssignedAt - b.lastAssignedAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The least loaded agent with a free slot, or undefined when every one is full. */
export function pickLeastLoaded<T extends AgentLoad>(candidates: Iterable<T>): T | undefined {
  let best: T | undefined;
  for (const c of candidates) {
    if (c.running >= c.capacity) continue;
    if (best === undefined || compareLoad(c, best) < 0) best = c;
  }
  return best;
}

/** One parsed label selector of ListAgents: `key=value` or `key` (present with any value). */
export type LabelTerm = { key: string; value?: string };

export function parseLabelSelector(raw: string): LabelTerm {
  const eq = raw.indexOf("=");
  return eq < 0 ? { key: raw.trim() } : { key: raw.slice(0, eq).trim(), value: raw.slice(eq + 1).trim() };
}

/** Whether labels satisfy every term. */
export function labelsMatch(labels: Readonly<Record<string, string>>, terms: readonly LabelTerm[]): boolean {
  return terms.every((t) => (t.value === undefined ? t.key in labels : labels[t.key] === t.value));
}

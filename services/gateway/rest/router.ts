import type { DescField, DescMessage } from "@bufbuild/protobuf";
import type { HttpBinding, PublicMethod, RouteTable } from "../routes/route-table.js";
import { matchSplit, type PathTemplate, parseTemplate, specificity, splitPath } from "./path-template.js";
import { findField } from "./query-params.js";

/** One REST endpoint: a binding of a public method, with its parsed template. */
interface Endpoint {
  readonly route: PublicMethod;
  readonly binding: HttpBinding;
  readonly template: PathTemplate;
}

/** The outcome of routing a request. */
export type RouteMatch =
  | { kind: "found"; route: PublicMethod; binding: HttpBinding; params: Record<string, string> }
  | { kind: "method-not-allowed"; allow: string[] }
  | { kind: "not-found" };

/**
 * Every REST binding of every public method, most specific template first (literals beat
 * variables, so `/v1/agents:register` wins over `/v1/agents/{agent_id}`-like shapes).
 * Templates are checked at start-up: a variable naming no field is a contract bug and stops the
 * gateway instead of failing requests.
 */
export class RestRouter {
  private readonly endpoints: Endpoint[] = [];

  constructor(routes: RouteTable) {
    for (const route of routes.public.values()) {
      for (const binding of route.bindings) {
        const template = parseTemplate(binding.template);
        for (const v of template.variables) checkFieldPath(route.method.input, v.fieldPath, binding.template);
        this.endpoints.push({ route, binding, template });
      }
    }
    this.endpoints.sort((a, b) => specificity(b.template) - specificity(a.template));
  }

  /** Every endpoint, for docs and tests. */
  list(): readonly { verb: string; template: string; path: string }[] {
    return this.endpoints.map((e) => ({
      verb: e.binding.verb,
      template: e.binding.template,
      path: e.route.path,
    }));
  }

  match(method: string, path: string): RouteMatch {
    const verb = method === "HEAD" ? "GET" : method;
    let allow: Set<string> | undefined;
    const split = splitPath(path);
    for (const e of this.endpoints) {
      const params = matchSplit(e.template, split);
      if (!params) continue;
      if (e.binding.verb === verb) return { kind: "found", route: e.route, binding: e.binding, params };
      allow ??= new Set();
      allow.add(e.binding.verb);
    }
    return allow ? { kind: "method-not-allowed", allow: [...allow] } : { kind: "not-found" };
  }
}

function checkFieldPath(input: DescMessage, fieldPath: string, template: string): void {
  let desc: DescMessage | undefined = input;
  for (const name of fieldPath.split(".")) {
    const field: DescField | undefined = desc ? findField(desc, name) : undefined;
    if (!field) throw new Error(`${template}: {${fieldPath}} names no field of ${input.typeName}`);
    desc = field.fieldKind === "message" ? field.message : undefined;
  }
}

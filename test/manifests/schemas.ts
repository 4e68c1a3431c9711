/**
 * Schema checks of rendered manifests, offline.
 *
 * 1. `validate()` of the matching kubernetes-models / @kubernetes-models/istio class: types,
 *    enums, required fields, formats, against the Kubernetes and Istio OpenAPI schemas.
 * 2. Unknown fields. Those schemas do not refuse them (neither do Istio's CRDs: the API server
 *    silently prunes them), so a typo such as `outlierDetecton` would pass (1) and be dropped
 *    in the cluster. The models' TypeScript interfaces are exact, so every document is compiled
 *    as an object literal of its interface, where the compiler flags each unknown property.
 */
import { join } from "node:path";
import {
  DestinationRule,
  Gateway,
  VirtualService,
} from "@kubernetes-models/istio/networking.istio.io/v1beta1";
import { AuthorizationPolicy, PeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1beta1";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import ts from "typescript";
import { type Manifest, repoRoot } from "./render.js";

interface Kind {
  model: new (data: never) => { validate(): void };
  /** Module and interface the strict check compiles against. */
  module: string;
  iface: string;
}

const k8s = (model: Kind["model"], path: string, name: string): Kind => ({
  model,
  module: `kubernetes-models/${path}/${name}`,
  iface: `I${name}`,
});
const istio = (model: Kind["model"], path: string, name: string): Kind => ({
  model,
  module: `@kubernetes-models/istio/${path}/${name}`,
  iface: `I${name}`,
});

/** Every kind the manifests may contain, by `apiVersion/kind`; anything else is an error. */
export const KINDS: ReadonlyMap<string, Kind> = new Map([
  ["v1/Namespace", k8s(Namespace, "v1", "Namespace")],
  ["v1/ConfigMap", k8s(ConfigMap, "v1", "ConfigMap")],
  ["v1/Service", k8s(Service, "v1", "Service")],
  ["v1/ServiceAccount", k8s(ServiceAccount, "v1", "ServiceAccount")],
  ["apps/v1/Deployment", k8s(Deployment, "apps/v1", "Deployment")],
  ["policy/v1/PodDisruptionBudget", k8s(PodDisruptionBudget, "policy/v1", "PodDisruptionBudget")],
  [
    "autoscaling/v2/HorizontalPodAutoscaler",
    k8s(HorizontalPodAutoscaler, "autoscaling/v2", "HorizontalPodAutoscaler"),
  ],
  [
    "networking.istio.io/v1beta1/DestinationRule",
    istio(DestinationRule, "networking.istio.io/v1beta1", "DestinationRule"),
  ],
  [
    "networking.istio.io/v1beta1/VirtualService",
    istio(VirtualService, "networking.istio.io/v1beta1", "VirtualService"),
  ],
  ["networking.istio.io/v1beta1/Gateway", istio(Gateway, "networking.istio.io/v1beta1", "Gateway")],
  [
    "security.istio.io/v1beta1/AuthorizationPolicy",
    istio(AuthorizationPolicy, "security.istio.io/v1beta1", "AuthorizationPolicy"),
  ],
  [
    "security.istio.io/v1beta1/PeerAuthentication",
    istio(PeerAuthentication, "security.istio.io/v1beta1", "PeerAuthentication"),
  ],
]);

export const label = (m: Manifest) => `${m.kind} ${m.metadata.namespace ?? ""}/${m.metadata.name}`;

function kindOf(m: Manifest): Kind {
  const kind = KINDS.get(`${m.apiVersion}/${m.kind}`);
  if (!kind) throw new Error(`${label(m)}: no schema for ${m.apiVersion} ${m.kind}; add it to KINDS`);
  return kind;
}

/** Schema errors of one document (empty when valid). */
export function schemaErrors(m: Manifest): string[] {
  try {
    new (kindOf(m).model)(m as never).validate();
    return [];
  } catch (e) {
    return [`${label(m)}: ${e instanceof Error ? e.message : String(e)}`];
  }
}

/** Unknown (or mistyped) fields of all documents, one message each; compiled in one program. */
export function unknownFieldErrors(docs: readonly Manifest[]): string[] {
  const kinds = docs.map(kindOf);
  const imports = [...new Set(kinds.map((k) => `import type { ${k.iface} } from "${k.module}";`))];
  // One document per line, so a diagnostic's line names its document.
  const lines = [
    ...imports,
    ...docs.map((d, i) => `export const d${i}: ${kinds[i]!.iface} = ${JSON.stringify(d)};`),
  ];
  const file = join(repoRoot, "test", "manifests", "__rendered_manifests__.mts");
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const source = ts.createSourceFile(file, lines.join("\n"), ts.ScriptTarget.ES2022, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, ...rest) => (name === file ? source : getSourceFile(name, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program, source).map((d) => {
    const line = d.start === undefined ? -1 : source.getLineAndCharacterOfPosition(d.start).line;
    const doc = docs[line - imports.length];
    // The interface is spelled out after "in type"; where the property sits is what matters.
    const text = ts.flattenDiagnosticMessageText(d.messageText, " ").replace(/ in type '[\s\S]*$/, "");
    const at = d.start === undefined ? "" : ` at ${pathAt(source, d.start)}`;
    return `${doc ? label(doc) : "(imports)"}${at}: ${text}`;
  });
}

/** The document path (`spec.template.spec.containers[0].name`) of a position in the literal. */
function pathAt(source: ts.SourceFile, pos: number): string {
  let path = "";
  let node: ts.Node | undefined = source;
  while (node) {
    const parent: ts.Node = node;
    node = ts.forEachChild(parent, (c) => (pos >= c.getStart() && pos < c.getEnd() ? c : undefined));
    if (node && ts.isPropertyAssignment(node)) path += `${path ? "." : ""}${JSON.parse(node.name.getText())}`;
    else if (node && ts.isArrayLiteralExpression(parent))
      path += `[${parent.elements.indexOf(node as ts.Expression)}]`;
  }
  return path;
}

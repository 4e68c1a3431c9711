/**
 * API key method scopes (api_key.proto): `<package>.<Service>/<Method>`, where `*` may stand
 * for the whole method (`codex.workitem.v1.WorkItemService/*`) or for the whole name (`*`,
 * every method — the same as no scopes).
 */

const SCOPE = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z0-9]*\/(\*|[A-Z][A-Za-z0-9]*))$/;

/** Whether a scope is well-formed. */
export function isValidScope(scope: string): boolean {
  return SCOPE.test(scope);
}

/** Whether a gRPC path (`/pkg.Service/Method`) is within the scopes; empty scopes allow all. */
export function inScope(scopes: readonly string[], path: string): boolean {
  if (scopes.length === 0) return true;
  const name = path.startsWith("/") ? path.slice(1) : path;
  const service = name.slice(0, name.indexOf("/"));
  return scopes.some((s) => s === "*" || s === name || s === `${service}/*`);
}

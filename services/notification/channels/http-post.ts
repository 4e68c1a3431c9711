import { lookup } from "node:dns/promises";
import { performance } from "node:perf_hooks";
import { isNonPublicIp } from "../domain/address-policy.js";
import { bodySnippet, classifyHttpStatus, clipError, parseRetryAfter } from "../domain/retry-policy.js";
import { SendAborted, type SendResult } from "./types.js";

/** Options shared by the HTTP channels. */
export interface HttpPostOptions {
  timeoutMs: number;
  /** Skip the resolved-address check (tests; never in production). */
  allowPrivateTargets: boolean;
}

/** Bytes of a response body read at most: only a short snippet is ever kept. */
const MAX_BODY_READ = 4096;

async function readSnippet(res: Response): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_BODY_READ) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return bodySnippet(Buffer.concat(chunks).toString("utf8"));
}

/**
 * Refuses hosts that resolve to loopback, private or link-local addresses (SSRF). The check
 * runs at send time because DNS can change after the subscription was validated. A name that
 * re-resolves between this check and the connection could still slip through (DNS rebinding);
 * pinning the checked address needs a custom dispatcher, noted in ADR 0009.
 */
async function targetRefusal(url: URL): Promise<string | undefined> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const addresses = isNonPublicIp(host) ? [{ address: host }] : await lookup(host, { all: true });
  const bad = addresses.find((a) => isNonPublicIp(a.address));
  return bad === undefined ? undefined : `target ${url.hostname} resolves to a non-public address`;
}

/**
 * POSTs a body and turns whatever happens into a {@link SendResult}: the status decides success
 * and retryability, a timeout or network error is retryable with status 0, redirects are not
 * followed (a redirect could lead to an internal address) and count as final failures.
 */
export async function httpPost(
  rawUrl: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  opts: HttpPostOptions,
): Promise<SendResult> {
  const url = new URL(rawUrl);
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  if (!opts.allowPrivateTargets) {
    try {
      const refusal = await targetRefusal(url);
      if (refusal) return { ok: false, statusCode: 0, error: refusal, retryable: false, latencyMs: 0 };
    } catch (err) {
      const msg = `DNS lookup of ${url.hostname} failed: ${(err as Error).message}`;
      return { ok: false, statusCode: 0, error: clipError(msg), retryable: true, latencyMs: elapsed() };
    }
  }
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  try {
    const res = await fetch(url, {
      method: "POST",
      body,
      headers,
      redirect: "manual",
      signal: AbortSignal.any([signal, timeout]),
    });
    const latencyMs = elapsed();
    const snippet = await readSnippet(res).catch(() => "");
    const kind = classifyHttpStatus(res.status);
    if (kind === "success")
      return { ok: true, statusCode: res.status, error: "", retryable: false, latencyMs };
    return {
      ok: false,
      statusCode: res.status,
      error: clipError(`HTTP ${res.status}${snippet ? `: ${snippet}` : ""}`),
      retryable: kind === "retryable",
      retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
      latencyMs,
    };
  } catch (err) {
    if (signal.aborted) throw new SendAborted("send aborted by shutdown", { cause: err });
    const latencyMs = elapsed();
    if (timeout.aborted) {
      return {
        ok: false,
        statusCode: 0,
        error: `timed out after ${opts.timeoutMs} ms`,
        retryable: true,
        latencyMs,
      };
    }
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err as Error).message;
    return {
      ok: false,
      statusCode: 0,
      error: clipError(`request failed: ${detail}`),
      retryable: true,
      latencyMs,
    };
  }
}

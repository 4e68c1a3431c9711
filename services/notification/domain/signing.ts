import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Webhook signatures: `X-Codex-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256("<t>.<body>")>`.
 *
 * Why the timestamp is inside the MAC: a receiver that refuses old `t` (5 minutes, per the
 * WebhookChannel contract) cannot be fed a captured request again later. The scheme is
 * Stripe's, so receivers can reuse existing verification code.
 */
export const SIGNATURE_HEADER = "X-Codex-Signature";

/** The header value for `body` signed with `secret` at `timestampSec`. */
export function signatureHeader(secret: string, body: string, timestampSec: number): string {
  return `t=${timestampSec},v1=${hmacHex(secret, `${timestampSec}.${body}`)}`;
}

function hmacHex(secret: string, data: string): string {
  return createHmac("sha256", secret).update(data, "utf8").digest("hex");
}

/** What a receiver checks; exported for tests and as the reference for receiver authors. */
export function verifySignatureHeader(
  secret: string,
  body: string,
  header: string,
  opts: { nowSec?: number; toleranceSec?: number } = {},
): boolean {
  const fields = new Map(
    header.split(",").map((kv) => {
      const eq = kv.indexOf("=");
      return [kv.slice(0, eq).trim(), kv.slice(eq + 1).trim()] as const;
    }),
  );
  const t = Number(fields.get("t"));
  const v1 = fields.get("v1") ?? "";
  if (!Number.isSafeInteger(t) || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const now = opts.nowSec ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (opts.toleranceSec ?? 300)) return false;
  const expected = Buffer.from(hmacHex(secret, `${t}.${body}`), "hex");
  return timingSafeEqual(expected, Buffer.from(v1, "hex"));
}

import { type HttpPostOptions, httpPost } from "./http-post.js";
import { Headers, type OutboundNotification, type SendResult } from "./types.js";

/**
 * SlackChannel: `{"text": <rendered>}` to the incoming webhook URL. The URL is the credential,
 * so errors name only its host (httpPost never puts the URL in an error).
 */
export function sendSlack(
  url: string,
  n: OutboundNotification,
  signal: AbortSignal,
  opts: HttpPostOptions,
): Promise<SendResult> {
  return httpPost(
    url,
    JSON.stringify({ text: n.body }),
    {
      "Content-Type": "application/json",
      "User-Agent": "codex-notification/1",
      [Headers.deliveryId]: n.deliveryKey,
    },
    signal,
    opts,
  );
}

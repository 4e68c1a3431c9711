import { EmailSender } from "./email.js";
import type { HttpPostOptions } from "./http-post.js";
import { sendSlack } from "./slack.js";
import type { ChannelTarget, OutboundNotification, Sender, SendResult } from "./types.js";
import { sendWebhook } from "./webhook.js";

/** Options of {@link createSender}. */
export interface SenderOptions extends HttpPostOptions {
  smtpUrl: string;
  smtpFrom: string;
}

/** The one Sender the worker and TestSubscription use, dispatching on the channel kind. */
export function createSender(opts: SenderOptions): Sender {
  const email = new EmailSender({ smtpUrl: opts.smtpUrl, from: opts.smtpFrom, timeoutMs: opts.timeoutMs });
  return {
    send(target: ChannelTarget, n: OutboundNotification, signal: AbortSignal): Promise<SendResult> {
      switch (target.kind) {
        case "webhook":
          return sendWebhook(target.url, target.secret, n, signal, opts);
        case "slack":
          return sendSlack(target.url, n, signal, opts);
        case "email":
          return email.send(target.to, n);
      }
    },
    async close() {
      email.close();
    },
  };
}

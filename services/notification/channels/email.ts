import { performance } from "node:perf_hooks";
import nodemailer, { type Transporter } from "nodemailer";
import { classifySmtpCode, clipError } from "../domain/retry-policy.js";
import { Headers, type OutboundNotification, type SendResult } from "./types.js";

/**
 * EmailChannel over one pooled SMTP transport. Status codes are SMTP reply codes: 2xx accepted,
 * 4xx transient (retried), 5xx permanent; a connection failure or timeout is retryable with 0.
 * The delivery id goes into `X-Codex-Delivery-Id` and the Message-ID, so a re-sent mail can be
 * recognised as the same notification.
 */
export class EmailSender {
  readonly #transport: Transporter;
  readonly #from: string;

  constructor(opts: { smtpUrl: string; from: string; timeoutMs: number }) {
    this.#from = opts.from;
    const url = new URL(opts.smtpUrl);
    this.#transport = nodemailer.createTransport({
      host: url.hostname,
      port: Number(url.port || (url.protocol === "smtps:" ? 465 : 25)),
      secure: url.protocol === "smtps:",
      ...(url.username
        ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }
        : {}),
      connectionTimeout: opts.timeoutMs,
      greetingTimeout: opts.timeoutMs,
      socketTimeout: opts.timeoutMs,
    });
  }

  async send(to: readonly string[], n: OutboundNotification): Promise<SendResult> {
    const started = performance.now();
    try {
      const info = await this.#transport.sendMail({
        from: this.#from,
        to: [...to],
        subject: n.subject,
        text: n.body,
        messageId: `<${n.deliveryKey}@codex-notification>`,
        headers: {
          [Headers.deliveryId]: n.deliveryKey,
          [Headers.eventId]: n.eventId,
          [Headers.eventType]: n.eventType,
        },
      });
      const code = Number.parseInt(String(info.response ?? "250"), 10) || 250;
      const latencyMs = performance.now() - started;
      const kind = classifySmtpCode(code);
      if (kind === "success") return { ok: true, statusCode: code, error: "", retryable: false, latencyMs };
      return {
        ok: false,
        statusCode: code,
        error: clipError(String(info.response)),
        retryable: kind === "retryable",
        latencyMs,
      };
    } catch (err) {
      const latencyMs = performance.now() - started;
      const e = err as { responseCode?: number; response?: string; code?: string; message?: string };
      const code = typeof e.responseCode === "number" ? e.responseCode : 0;
      const detail = e.response ?? e.message ?? e.code ?? "unknown error";
      return {
        ok: false,
        statusCode: code,
        error: clipError(`SMTP ${code || e.code || "error"}: ${detail}`),
        retryable: code === 0 || classifySmtpCode(code) === "retryable",
        latencyMs,
      };
    }
  }

  close(): void {
    this.#transport.close();
  }
}

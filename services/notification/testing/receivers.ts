import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

/** One request a test receiver got. */
export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** How the receiver answers request number `n` (0-based): status and optional delay. */
export type Responder = (
  n: number,
  req: ReceivedRequest,
) => { status: number; delayMs?: number; headers?: Record<string, string> };

/**
 * An HTTP receiver on 127.0.0.1 with a free port, standing in for webhook endpoints and Slack.
 * It records everything, and "processes" each X-Codex-Delivery-Id once, as receivers should.
 */
export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** Distinct delivery ids processed (the receiver's dedupe). */
  readonly processed = new Set<string>();
  responder: Responder = () => ({ status: 200 });
  #server: Server | undefined;
  #port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r: ReceivedRequest = {
          path: req.url ?? "/",
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          at: Date.now(),
        };
        const n = this.requests.length;
        this.requests.push(r);
        const answer = this.responder(n, r);
        const reply = () => {
          const id = r.headers["x-codex-delivery-id"];
          if (answer.status < 300 && typeof id === "string") this.processed.add(id);
          res.writeHead(answer.status, answer.headers ?? {});
          res.end(answer.status < 300 ? "ok" : "nope");
        };
        if (answer.delayMs) setTimeout(reply, answer.delayMs);
        else reply();
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}

/** A message received by {@link SmtpReceiver}. */
export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
  headers: Record<string, string>;
  body: string;
}

function parseMail(raw: string): { subject: string; headers: Record<string, string>; body: string } {
  const split = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, " ");
  const headers: Record<string, string> = {};
  for (const line of head.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { subject: headers.subject ?? "", headers, body: raw.slice(split + 4) };
}

/** A real SMTP server (smtp-server) on 127.0.0.1 with a free port, collecting messages. */
export class SmtpReceiver {
  readonly mails: ReceivedMail[] = [];
  #server: SMTPServer | undefined;
  #port = 0;

  get url(): string {
    return `smtp://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<this> {
    this.#server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          const envelope = session.envelope;
          this.mails.push({
            from: envelope.mailFrom ? envelope.mailFrom.address : "",
            to: envelope.rcptTo.map((r) => r.address),
            raw,
            ...parseMail(raw),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.#port = (this.#server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}

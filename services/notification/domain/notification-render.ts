import { render, singleLine, type TemplateContext } from "./template.js";

/**
 * What is sent for one event to one subscription: the body (and the email subject) rendered
 * from the subscription's templates, or from the channel defaults of the Subscription contract.
 * Pure: the context is built from the envelope by events/event-context.ts.
 */
export type ChannelKind = "webhook" | "slack" | "email";

export interface RenderSpec {
  kind: ChannelKind;
  /** Subscription.template; "" uses the channel default. */
  template: string;
  /** EmailChannel.subject_template; "" uses {@link DEFAULT_SUBJECT}. */
  subjectTemplate: string;
  /** Base URL of the web console for the default message's link, if configured. */
  consoleUrl?: string | undefined;
}

export interface Rendered {
  body: string;
  /** Email only. */
  subject: string;
  /** Content type of a webhook body. */
  contentType: string;
}

export const DEFAULT_SUBJECT = "[codex] {{event.type}} {{event.aggregate_type}} {{event.aggregate_id}}";

function str(v: unknown): string {
  return typeof v === "string" || typeof v === "number" ? String(v) : "";
}

/** The envelope as JSON with the payload expanded (and the alert, for alert subscriptions). */
export function defaultWebhookBody(ctx: TemplateContext): string {
  const event = (ctx.event ?? {}) as Record<string, unknown>;
  const body: Record<string, unknown> = { ...event, payload: ctx.payload ?? null };
  if (ctx.alert !== undefined) body.alert = ctx.alert;
  return JSON.stringify(body);
}

/** One line saying what happened, plus a console link when one is configured. */
export function defaultSummary(ctx: TemplateContext, consoleUrl: string | undefined): string {
  const e = (ctx.event ?? {}) as Record<string, unknown>;
  const s = (ctx.subscription ?? {}) as Record<string, unknown>;
  const type = str(e.type);
  const short = type.slice(type.lastIndexOf(".") + 1);
  const project = str(e.project_id);
  let line: string;
  if (ctx.alert !== undefined) {
    const a = ctx.alert as Record<string, unknown>;
    line =
      `[codex] Alert ${str(a.kind)}: ${str(a.count)} occurrences within ${str(a.window)} ` +
      `(threshold ${str(a.threshold)}) for ${str(a.key)}, last: ${short} ${str(e.aggregate_type)} ${str(e.aggregate_id)}`;
  } else {
    line = `[codex] ${short} on ${str(e.aggregate_type)} ${str(e.aggregate_id)}`;
  }
  if (project !== "") line += ` in project ${project}`;
  if (str(s.display_name) !== "") line += ` (subscription "${str(s.display_name)}")`;
  if (consoleUrl === undefined || consoleUrl === "") return line;
  const base = consoleUrl.replace(/\/+$/, "");
  const path = project === "" ? `/events/${str(e.id)}` : `/projects/${project}/events/${str(e.id)}`;
  return `${line}\n${base}${path}`;
}

function looksLikeJson(text: string): boolean {
  const t = text.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return false;
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
}

/** Renders body and subject for a channel. Templates were validated when stored. */
export function renderNotification(spec: RenderSpec, ctx: TemplateContext): Rendered {
  let body: string;
  if (spec.template !== "") body = render(spec.template, ctx);
  else if (spec.kind === "webhook") body = defaultWebhookBody(ctx);
  else body = defaultSummary(ctx, spec.consoleUrl);
  const subject =
    spec.kind === "email" ? singleLine(render(spec.subjectTemplate || DEFAULT_SUBJECT, ctx)) : "";
  const contentType = looksLikeJson(body) ? "application/json" : "text/plain; charset=utf-8";
  return { body, subject, contentType };
}

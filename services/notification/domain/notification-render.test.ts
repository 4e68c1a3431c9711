import { describe, expect, it } from "vitest";
import { renderNotification } from "./notification-render.js";

const ctx = {
  event: {
    id: "e1",
    type: "codex.events.v1.ProjectCreated",
    aggregate_type: "project",
    aggregate_id: "p1",
    project_id: "p1",
  },
  payload: { name: "alpha" },
  subscription: { id: "s1", display_name: "ops", project_id: "p1" },
};

describe("rendering per channel", () => {
  it("defaults webhooks to the envelope with the payload expanded", () => {
    const r = renderNotification({ kind: "webhook", template: "", subjectTemplate: "" }, ctx);
    expect(JSON.parse(r.body)).toEqual({ ...ctx.event, payload: { name: "alpha" } });
    expect(r.contentType).toBe("application/json");
    expect(r.subject).toBe("");
  });

  it("defaults Slack and email to a one-line summary with a console link", () => {
    const r = renderNotification(
      { kind: "slack", template: "", subjectTemplate: "", consoleUrl: "https://console.example/" },
      ctx,
    );
    expect(r.body).toBe(
      '[codex] ProjectCreated on project p1 in project p1 (subscription "ops")\nhttps://console.example/projects/p1/events/e1',
    );
    const alert = { kind: "AGENT_LOST", count: 3, threshold: 3, window: "10m", key: "p1" };
    const a = renderNotification({ kind: "email", template: "", subjectTemplate: "" }, { ...ctx, alert });
    expect(a.body).toContain("[codex] Alert AGENT_LOST: 3 occurrences within 10m (threshold 3) for p1");
    expect(a.subject).toBe("[codex] codex.events.v1.ProjectCreated project p1");
    expect(a.contentType).toBe("text/plain; charset=utf-8");
  });

  it("uses templates when given, with single-line subjects", () => {
    const r = renderNotification(
      { kind: "email", template: "Hi {{payload.name}}", subjectTemplate: "{{payload.name}}\r\n!" },
      ctx,
    );
    expect(r).toMatchObject({ body: "Hi alpha", subject: "alpha !" });
  });
});

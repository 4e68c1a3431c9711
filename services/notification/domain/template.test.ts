import { describe, expect, it } from "vitest";
import { compileTemplate, render, singleLine } from "./template.js";

describe("templates", () => {
  const ctx = {
    event: { id: "e1", type: "codex.events.v1.WorkItemStateChanged", actor: { id: "alice" } },
    payload: { new_state: "WORK_ITEM_STATE_FAILED", changed_fields: ["a", "b"], nested: { n: 3 } },
    subscription: { display_name: "ops" },
  };

  it("renders envelope, payload (nested, by index) and subscription fields", () => {
    expect(
      render(
        "{{event.type}} by {{ event.actor.id }}: {{payload.new_state}} {{payload.changed_fields.1}}",
        ctx,
      ),
    ).toBe("codex.events.v1.WorkItemStateChanged by alice: WORK_ITEM_STATE_FAILED b");
    expect(render("{{payload.nested}}|{{payload.nested.n}}|{{subscription.display_name}}", ctx)).toBe(
      '{"n":3}|3|ops',
    );
  });

  it("renders absent paths as empty strings and keeps JSON braces literal", () => {
    expect(render('{"id":"{{event.id}}","x":{"y":"{{payload.missing.deep}}"}}', ctx)).toBe(
      '{"id":"e1","x":{"y":""}}',
    );
  });

  it("refuses unbalanced braces, unknown roots and malformed paths", () => {
    expect(compileTemplate("hello {{event.id").ok).toBe(false);
    expect(compileTemplate("{{ {{event.id}}").ok).toBe(false);
    expect(compileTemplate("{{secret.value}}").ok).toBe(false);
    expect(compileTemplate("{{event}}").ok).toBe(false);
    expect(compileTemplate("{{event..id}}").ok).toBe(false);
    expect(compileTemplate("{{}}").ok).toBe(false);
    const r = compileTemplate("a {{alert.count}} b");
    expect(r.ok && [...r.template.roots]).toEqual(["alert"]);
  });

  it("makes subjects single-line", () => {
    expect(singleLine("a\r\n  b\nc ")).toBe("a b c");
  });
});

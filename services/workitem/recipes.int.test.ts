import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ToolRecipeSetSchema } from "../../gen/codex/events/v1/workitem_events_pb.js";
import { WorkItemKind, WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code } from "../../mesh/errors.js";
import { failure, type Kit, startKit } from "./test-kit.js";

let kit: Kit;
beforeAll(async () => {
  kit = await startKit();
});
afterAll(async () => kit?.cleanup());

const SHA = `sha256:${"a".repeat(64)}`;
const RECIPE = `tools:
  - name: node
    version: "20.11.1"
    checksum: ${SHA}
    env: {NODE_ENV: "test"}
steps:
  - npm ci
  - run: npm test
    env: {CI: "1"}
    timeout: 10m
    cwd: ./app//web/
`;
/** The same recipe written differently: flow style, other quoting, 600 seconds. */
const SAME_RECIPE = `# reformatted
steps: ["npm ci", {run: "npm test", cwd: "app/web", timeout: 600, env: {CI: "1"}}]
tools: [{name: node, checksum: "${SHA}", version: "20.11.1", env: {NODE_ENV: test}}]
`;

async function newItem(): Promise<string> {
  const res = await kit
    .as("alice")
    .createWorkItem({ projectId: kit.project, workItem: { title: "r", kind: WorkItemKind.TEST } });
  return res.workItem?.id ?? "";
}

describe("recipes", () => {
  it("stores versions, exposes the parsed form as typed messages and skips unchanged recipes", async () => {
    const id = await newItem();
    const first = await kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: RECIPE });
    expect(first.recipe?.version).toBe(1);
    expect(first.workItem?.recipeVersion).toBe(1);
    expect(first.recipe?.tools[0]).toMatchObject({
      name: "node",
      version: "20.11.1",
      checksum: SHA,
      env: { NODE_ENV: "test" },
      network: false,
    });
    expect(first.recipe?.steps.map((s) => s.run)).toEqual(["npm ci", "npm test"]);
    expect(first.recipe?.steps[1]?.timeout?.seconds).toBe(600n);
    expect(first.recipe?.steps[1]?.cwd).toBe("app/web");
    expect(first.recipe?.steps[0]?.timeout).toBeUndefined();
    expect(first.recipe?.sha256).toMatch(/^[0-9a-f]{64}$/);

    const same = await kit.as("bob").setToolRecipe({ workItemId: id, recipeYaml: SAME_RECIPE });
    expect(same.recipe?.version).toBe(1);
    expect(same.recipe?.sourceYaml).toBe(RECIPE);

    const second = await kit
      .as("bob")
      .setToolRecipe({ workItemId: id, recipeYaml: RECIPE.replace("npm ci", "npm install") });
    expect(second.recipe?.version).toBe(2);
    expect(second.recipe?.createdBy).toBe("bob");

    const versions = await kit.as("viewer").listToolRecipeVersions({ workItemId: id, pageSize: 1 });
    expect(versions.recipes.map((r) => r.version)).toEqual([2]);
    const rest = await kit
      .as("viewer")
      .listToolRecipeVersions({ workItemId: id, pageToken: versions.nextPageToken });
    expect(rest.recipes.map((r) => r.version)).toEqual([1]);
    expect((await kit.as("viewer").getToolRecipe({ workItemId: id })).recipe?.version).toBe(2);
    expect((await kit.as("viewer").getToolRecipe({ workItemId: id, version: 1 })).recipe?.sourceYaml).toBe(
      RECIPE,
    );
    expect((await failure(kit.as("viewer").getToolRecipe({ workItemId: id, version: 9 }))).code).toBe(
      Code.NOT_FOUND,
    );

    await kit.settled();
    const events = await kit.eventsOf(ToolRecipeSetSchema, 2, (e) => e.workItemId === id);
    expect(events.map((e) => [e.previousVersion, e.recipe?.version, e.recipe?.sourceYaml])).toEqual([
      [0, 1, ""],
      [1, 2, ""],
    ]);
  });

  it("reports every problem with its path and line:column", async () => {
    const id = await newItem();
    const bad = `tools:
  - name: node
    version: "20"
    checksum: md5:abc
    env: {PORT: 8080}
steps:
  - run: ""
  - run: x
    timeout: forever
    shell: bash
`;
    const f = await failure(kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: bad }));
    expect(f.code).toBe(Code.INVALID_ARGUMENT);
    expect(f.reason).toBe("INVALID_RECIPE");
    const violations = f.err.findDetail(BadRequestSchema)?.fieldViolations ?? [];
    const byField = Object.fromEntries(violations.map((v) => [v.field, v.description]));
    expect(byField["tools[0].checksum"]).toMatch(/^4:15: /);
    expect(byField["tools[0].env.PORT"]).toMatch(/^5:17: /);
    expect(byField["steps[0].run"]).toMatch(/^7:10: /);
    expect(byField["steps[1].timeout"]).toMatch(/^9:14: /);
    expect(byField["steps[1].shell"]).toMatch(/^10:5: /);
    expect((await kit.as("alice").getWorkItem({ workItemId: id })).workItem?.recipeVersion).toBe(0);

    const dry = await kit.as("viewer").validateToolRecipe({ recipeYaml: bad });
    expect(dry.valid).toBe(false);
    expect(dry.problems.map((p) => p.path)).toEqual(violations.map((v) => v.field));
    const ok = await kit.as("viewer").validateToolRecipe({ recipeYaml: RECIPE });
    expect(ok.valid).toBe(true);
    expect(ok.recipe?.steps).toHaveLength(2);
  });

  it("refuses hostile YAML with INVALID_ARGUMENT, fast, and keeps serving others meanwhile", async () => {
    const id = await newItem();
    const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (const n of "bcdefghi")
      laughs.push(
        `${n}: &${n} [${Array(9)
          .fill(`*${String.fromCharCode(n.charCodeAt(0) - 1)}`)
          .join(",")}]`,
      );
    laughs.push("steps: [*i]");
    const hostile: [string, string, RegExp][] = [
      ["alias bomb", laughs.join("\n"), /aliases|anchors/],
      ["deep nesting", "[".repeat(200_000), /nesting is deeper than 32 levels/],
      [
        "indentation nesting",
        Array.from({ length: 40 }, (_, i) => `${" ".repeat(i * 2)}k${i}:`).join("\n"),
        /nesting/,
      ],
      ["over 256 KiB", `steps: ["${"x".repeat(300 * 1024)}"]`, /256 KiB|262144/],
      ["duplicate keys", "steps: [x]\nsteps: [y]\n", /duplicate key/],
      ["non-string env value", `steps:\n  - run: x\n    env: {DEBUG: true}\n`, /string/],
      ["unknown key", `steps: [x]\nimages: [ubuntu]\n`, /unknown/],
      ["huge list", `steps: [${"x,".repeat(120_000)}]`, /more than 512 entries/],
      ["tag", `steps:\n  - !!python/object:os.system "rm -rf /"\n`, /tags are not allowed/],
    ];
    for (const [name, yaml, message] of hostile) {
      const started = performance.now();
      const slowPeer = kit.as("viewer").getWorkItem({ workItemId: id });
      const f = await failure(kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: yaml }));
      const elapsed = performance.now() - started;
      expect(f.code, name).toBe(Code.INVALID_ARGUMENT);
      const descriptions =
        f.err.findDetail(BadRequestSchema)?.fieldViolations.map((v) => v.description) ?? [];
      expect(descriptions.join("\n"), name).toMatch(message);
      expect(descriptions.length, name).toBeLessThanOrEqual(101);
      expect(elapsed, name).toBeLessThan(1_000);
      expect((await slowPeer).workItem?.id, name).toBe(id);
    }
    const item = (await kit.as("alice").getWorkItem({ workItemId: id })).workItem;
    expect(item?.recipeVersion).toBe(0);
    expect(
      (await kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: RECIPE })).recipe?.version,
    ).toBe(1);
  });

  it("freezes the recipe once the item runs, and honours etags", async () => {
    const id = await newItem();
    const stale = (await kit.as("alice").getWorkItem({ workItemId: id })).workItem?.etag ?? "";
    await kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: RECIPE, etag: stale });
    const f = await failure(
      kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: SAME_RECIPE, etag: stale }),
    );
    expect(f.reason).toBe("ETAG_MISMATCH");
    await kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: WorkItemState.QUEUED });
    await kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: WorkItemState.IN_PROGRESS });
    const frozen = await failure(
      kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: RECIPE.replace("ci", "i") }),
    );
    expect(frozen.code).toBe(Code.FAILED_PRECONDITION);
    expect(frozen.reason).toBe("WRONG_STATE");
    expect((await failure(kit.as("viewer").setToolRecipe({ workItemId: id, recipeYaml: RECIPE }))).code).toBe(
      Code.PERMISSION_DENIED,
    );
  });
});

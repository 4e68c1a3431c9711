import { create } from "@bufbuild/protobuf";
import { ToolRecipeSetSchema } from "../../../gen/codex/events/v1/workitem_events_pb.js";
import {
  GetToolRecipeResponseSchema,
  ListToolRecipeVersionsResponseSchema,
  type RecipeProblem,
  RecipeProblemSchema,
  SetToolRecipeRequestSchema,
  SetToolRecipeResponseSchema,
  ValidateToolRecipeResponseSchema,
} from "../../../gen/codex/workitem/v1/recipe_pb.js";
import type { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import type { Deps } from "../app/deps.js";
import { reassess, saveReassessed } from "../app/gate.js";
import { mutate } from "../app/mutation.js";
import { actorId, callerOf } from "../authz.js";
import { parsedRecipeToProto, recipeToProto, workItemToProto } from "../convert.js";
import { DEFAULT_RECIPE_LIMITS, type ParseRecipeResult, parseRecipe } from "../domain/recipe/index.js";
import { invalidArgument, notFound, Violations, wrongState } from "../errors.js";
import { getRecipe, insertRecipe, listRecipes } from "../store/recipes.js";
import { saveWorkItem } from "../store/work-items.js";
import { itemFor, itemForChange, requireId } from "./access.js";

type Impl = ServiceImpl<typeof WorkItemService>;

/** States in which the recipe is being (or has been) executed and so cannot change. */
const FROZEN = new Set(["IN_PROGRESS", "REVIEW", "DONE", "CANCELLED"]);

/** Refuses empty or oversized YAML before anything parses it. */
function checkYamlSize(yaml: string): void {
  if (yaml === "")
    throw invalidArgument("recipe_yaml is required", [{ field: "recipe_yaml", description: "is required" }]);
  const bytes = Buffer.byteLength(yaml, "utf8");
  if (bytes > DEFAULT_RECIPE_LIMITS.maxBytes) {
    throw invalidArgument(
      `recipe is ${bytes} bytes; at most ${DEFAULT_RECIPE_LIMITS.maxBytes} are accepted`,
      [
        {
          field: "recipe_yaml",
          description: `must be at most ${DEFAULT_RECIPE_LIMITS.maxBytes} bytes (256 KiB)`,
        },
      ],
      "INVALID_RECIPE",
    );
  }
}

function problemsOf(result: ParseRecipeResult): RecipeProblem[] {
  if (result.ok) return [];
  return result.problems.map((p) =>
    create(RecipeProblemSchema, { path: p.path, line: p.line, column: p.column, message: p.message }),
  );
}

/** Tool recipes: validate, set (versioned), get and list versions. */
export function recipeHandlers(
  deps: Deps,
): Pick<Impl, "setToolRecipe" | "getToolRecipe" | "listToolRecipeVersions" | "validateToolRecipe"> {
  return {
    async validateToolRecipe(req, ctx) {
      callerOf(ctx);
      checkYamlSize(req.recipeYaml);
      const result = parseRecipe(req.recipeYaml);
      return create(ValidateToolRecipeResponseSchema, {
        valid: result.ok,
        problems: problemsOf(result),
        ...(result.ok ? { recipe: parsedRecipeToProto(result.recipe, result.sha256, req.recipeYaml) } : {}),
      });
    },

    async setToolRecipe(req, ctx) {
      const caller = callerOf(ctx);
      const id = requireId(req.workItemId, "work_item_id");
      // Authorize before spending any CPU on untrusted YAML, then parse outside the transaction.
      await itemFor(deps.pool, caller, id, "write");
      checkYamlSize(req.recipeYaml);
      const result = parseRecipe(req.recipeYaml);
      if (!result.ok) {
        const count = result.problems.length;
        throw invalidArgument(
          `recipe is invalid (${count} problem${count === 1 ? "" : "s"})`,
          result.problems.map((p) => ({ field: p.path, description: `${p.line}:${p.column}: ${p.message}` })),
          "INVALID_RECIPE",
        );
      }
      const m = {
        method: "SetToolRecipe",
        requestId: req.requestId,
        requestSchema: SetToolRecipeRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: SetToolRecipeResponseSchema },
        async (tx) => {
          const item = await itemForChange(tx, caller, id, req.etag);
          if (FROZEN.has(item.state)) {
            throw wrongState(
              `work_items/${id}`,
              item.state,
              `the recipe of a ${item.state} work item cannot change`,
            );
          }
          const current = item.recipeVersion > 0 ? await getRecipe(tx, id, item.recipeVersion) : undefined;
          if (current && current.sha256 === result.sha256) {
            return create(SetToolRecipeResponseSchema, {
              recipe: recipeToProto(current),
              workItem: workItemToProto(item),
            });
          }
          const at = deps.now();
          const recipe = {
            workItemId: id,
            version: item.recipeVersion + 1,
            sha256: result.sha256,
            sourceYaml: req.recipeYaml,
            parsed: result.recipe,
            createdBy: actorId(caller),
            createTime: at,
          };
          await insertRecipe(tx, recipe);
          const previousVersion = item.recipeVersion;
          item.recipeVersion = recipe.version;
          const changed = await reassess(tx, deps, caller, item, {
            scopeChanged: true,
            onBehalfOf: actorId(caller),
            at,
          });
          item.updateTime = at;
          const saved = changed
            ? await saveReassessed(tx, deps, caller, item, at)
            : await saveWorkItem(tx, item);
          const event = recipeToProto(recipe);
          event.sourceYaml = "";
          await deps.events.stage(tx, caller, {
            schema: ToolRecipeSetSchema,
            payload: create(ToolRecipeSetSchema, { workItemId: id, recipe: event, previousVersion }),
            aggregateType: "work_item",
            aggregateId: id,
            aggregateVersion: saved.version,
            projectId: saved.projectId,
            at,
          });
          return create(SetToolRecipeResponseSchema, {
            recipe: recipeToProto(recipe),
            workItem: workItemToProto(saved),
          });
        },
      );
    },

    async getToolRecipe(req, ctx) {
      const caller = callerOf(ctx);
      const id = requireId(req.workItemId, "work_item_id");
      const item = await itemFor(deps.pool, caller, id, "read");
      const version = req.version > 0 ? req.version : item.recipeVersion;
      const recipe = version > 0 ? await getRecipe(deps.pool, id, version) : undefined;
      if (!recipe) throw notFound("tool_recipe", `work_items/${id}/recipe/versions/${version}`);
      return create(GetToolRecipeResponseSchema, { recipe: recipeToProto(recipe) });
    },

    async listToolRecipeVersions(req, ctx) {
      const caller = callerOf(ctx);
      const id = requireId(req.workItemId, "work_item_id");
      const pages = pageTokens({ w: id });
      const v = new Violations();
      const cursor = pages.cursorOf(req.pageToken, v, { arity: 1 });
      v.throwIfAny();
      await itemFor(deps.pool, caller, id, "read");
      const limit = clampPageSize(req.pageSize, { default: 20, max: 100 });
      const before = cursor ? Number(cursor[0]) : undefined;
      const rows = await listRecipes(deps.pool, id, limit + 1, before);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return create(ListToolRecipeVersionsResponseSchema, {
        recipes: page.map(recipeToProto),
        nextPageToken: rows.length > limit && last ? pages.encode([last.version]) : "",
      });
    },
  };
}

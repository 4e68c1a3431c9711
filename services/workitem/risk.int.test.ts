import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ApprovalRequestedSchema,
  RiskRulesSetSchema,
  WorkItemUpdatedSchema,
} from "../../gen/codex/events/v1/workitem_events_pb.js";
import { ApprovalState } from "../../gen/codex/workitem/v1/approval_pb.js";
import { ApprovalStatus, WorkItemKind, WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { Code } from "../../mesh/errors.js";
import { failure, type Kit, startKit } from "./test-kit.js";

let kit: Kit;
beforeAll(async () => {
  kit = await startKit();
});
afterAll(async () => kit?.cleanup());

const NETWORK_RECIPE = `tools:
  - name: terraform
    version: "1.9.5"
    checksum: sha256:${"b".repeat(64)}
    network: true
steps:
  - terraform apply -auto-approve
`;

async function build(labels: Record<string, string> = {}) {
  const res = await kit.as("alice").createWorkItem({
    projectId: kit.project,
    workItem: { title: "build", kind: WorkItemKind.BUILD, labels },
  });
  return res.workItem;
}

describe("risk rules", () => {
  it("serves explicit defaults: production deploys, infra applies and network tools are risky", async () => {
    const rules = (await kit.as("viewer").getRiskRules({ projectId: kit.project })).riskRules;
    expect(rules?.kinds).toEqual([WorkItemKind.DEPLOY, WorkItemKind.APPLY]);
    expect(rules?.environments).toEqual(["production", "prod"]);
    expect(rules?.networkTools).toBe(true);
    const apply = await kit.as("alice").createWorkItem({
      projectId: kit.project,
      workItem: { title: "apply", kind: WorkItemKind.APPLY, environment: "prod" },
    });
    expect(apply.workItem?.risk?.risky).toBe(true);
    const staging = await kit.as("alice").createWorkItem({
      projectId: kit.project,
      workItem: { title: "deploy", kind: WorkItemKind.DEPLOY, environment: "staging" },
    });
    expect(staging.workItem?.risk?.risky).toBe(false);
  });

  it("keeps an item that becomes risky through its recipe from being queued until it is approved", async () => {
    const item = await build();
    const id = item?.id ?? "";
    expect(item?.state).toBe(WorkItemState.APPROVED);
    const set = await kit.as("alice").setToolRecipe({ workItemId: id, recipeYaml: NETWORK_RECIPE });
    expect(set.workItem?.risk?.reasons).toEqual(["tool terraform requires network"]);
    expect(set.workItem?.approvalStatus).toBe(ApprovalStatus.PENDING);
    const queued = await failure(
      kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: WorkItemState.QUEUED }),
    );
    expect([queued.code, queued.reason]).toEqual([Code.FAILED_PRECONDITION, "APPROVAL_REQUIRED"]);
    const request = await kit
      .as("bob")
      .approveRequest({ approvalRequestId: set.workItem?.approvalRequestId ?? "" });
    expect(request.approvalRequest?.recipeVersion).toBe(1);
    const ok = await kit
      .as("scheduler")
      .transitionWorkItem({ workItemId: id, toState: WorkItemState.QUEUED });
    expect(ok.workItem?.state).toBe(WorkItemState.QUEUED);

    // A new recipe version supersedes the granted approval: the new version must be approved too.
    await kit
      .as("scheduler")
      .transitionWorkItem({ workItemId: id, toState: WorkItemState.APPROVED, reason: "unscheduled" });
    const v2 = await kit
      .as("alice")
      .setToolRecipe({ workItemId: id, recipeYaml: `${NETWORK_RECIPE}  - echo done\n` });
    expect(v2.workItem?.approvalStatus).toBe(ApprovalStatus.PENDING);
    expect(v2.workItem?.approvalRequestId).not.toBe(request.approvalRequest?.id);
    const old = await kit
      .as("bob")
      .getApprovalRequest({ approvalRequestId: request.approvalRequest?.id ?? "" });
    expect(old.approvalRequest?.state).toBe(ApprovalState.CANCELLED);
    expect(
      (
        await failure(
          kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: WorkItemState.QUEUED }),
        )
      ).reason,
    ).toBe("APPROVAL_REQUIRED");
  });

  it("is configurable by owners only, and re-evaluates open items when changed", async () => {
    const critical = await build({ tier: "critical" });
    const other = await build({ tier: "low" });
    const maintainer = await failure(
      kit.as("alice").setRiskRules({ riskRules: { projectId: kit.project, networkTools: false } }),
    );
    expect(maintainer.code).toBe(Code.PERMISSION_DENIED);
    const bad = await failure(
      kit.as("owner").setRiskRules({
        riskRules: { projectId: kit.project, labelSelectors: [{ matchLabels: { "Not Valid": "x" } }] },
      }),
    );
    expect(bad.code).toBe(Code.INVALID_ARGUMENT);
    const current = (await kit.as("owner").getRiskRules({ projectId: kit.project })).riskRules;
    const set = await kit.as("owner").setRiskRules({
      riskRules: {
        projectId: kit.project,
        kinds: [WorkItemKind.DEPLOY],
        environments: ["production"],
        networkTools: false,
        labelSelectors: [{ matchLabels: { tier: "critical" } }],
        etag: current?.etag ?? "",
      },
    });
    expect(set.riskRules?.updatedBy).toBe("olivia");
    const stale = await failure(
      kit.as("owner").setRiskRules({ riskRules: { projectId: kit.project, etag: current?.etag ?? "" } }),
    );
    expect(stale.reason).toBe("ETAG_MISMATCH");

    const nowCritical = (await kit.as("alice").getWorkItem({ workItemId: critical?.id ?? "" })).workItem;
    expect(nowCritical?.risk?.reasons).toEqual(["labels match selector tier=critical"]);
    expect(nowCritical?.approvalStatus).toBe(ApprovalStatus.PENDING);
    const request = (
      await kit.as("bob").getApprovalRequest({ approvalRequestId: nowCritical?.approvalRequestId ?? "" })
    ).approvalRequest;
    expect(request?.onBehalfOf).toBe("alice");
    expect((await kit.as("alice").getWorkItem({ workItemId: other?.id ?? "" })).workItem?.risk?.risky).toBe(
      false,
    );

    // Labels changed by an update are re-evaluated too.
    const relabelled = await kit.as("bob").updateWorkItem({
      workItem: { id: other?.id ?? "", labels: { tier: "critical" } },
      updateMask: { paths: ["labels"] },
    });
    expect(relabelled.workItem?.approvalStatus).toBe(ApprovalStatus.PENDING);

    await kit.settled();
    expect(await kit.eventsOf(RiskRulesSetSchema, 1)).toHaveLength(1);
    const updates = await kit.eventsOf(WorkItemUpdatedSchema, 1, (e) => e.workItem?.id === critical?.id);
    expect(updates[0]?.updateMask?.paths).toEqual(["risk", "approval_status"]);
    const requested = await kit.eventsOf(
      ApprovalRequestedSchema,
      1,
      (e) => e.approvalRequest?.workItemId === critical?.id,
    );
    expect(requested).toHaveLength(1);
  });
});

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type SagaExecution,
  SagaExecutionSchema,
  SagaState,
  type SagaStep,
  SagaStepSchema,
  SagaStepState,
} from "../../../gen/codex/scheduler/v1/saga_pb.js";
import { type Status, StatusSchema } from "../../../gen/google/rpc/status_pb.js";
import { ServiceError } from "../../../mesh/errors.js";
import { actorId } from "../events/publish.js";
import type { SagaRow, StepRow } from "../store/sagas.js";

const ts = (d: Date | null) => (d ? timestampFromDate(d) : undefined);

/** An error as google.rpc.Status bytes, details included, internals never (see ServiceError.from). */
export function statusBytes(err: unknown): Uint8Array {
  const e = ServiceError.from(err);
  return toBinary(
    StatusSchema,
    create(StatusSchema, { code: e.code, message: e.message, details: e.details }),
  );
}

export function statusOf(bytes: Uint8Array | null): Status | undefined {
  return bytes ? fromBinary(StatusSchema, bytes) : undefined;
}

export function stepMessage(s: StepRow): SagaStep {
  return create(SagaStepSchema, {
    name: s.name,
    state: SagaStepState[s.state],
    attempt: s.attempt,
    error: statusOf(s.error),
    startTime: ts(s.startTime),
    finishTime: ts(s.finishTime),
  });
}

export function sagaMessage(s: SagaRow, steps: readonly StepRow[]): SagaExecution {
  return create(SagaExecutionSchema, {
    id: s.id,
    sagaType: s.sagaType,
    projectId: s.projectId,
    requestId: s.requestId,
    state: SagaState[s.state],
    steps: steps.map(stepMessage),
    workItemId: s.workItemId,
    taskId: s.taskId,
    error: statusOf(s.error),
    startedBy: actorId(s.startedBy),
    createTime: ts(s.createTime),
    updateTime: ts(s.updateTime),
    finishTime: ts(s.finishTime),
    etag: Buffer.from(`${s.id}:${s.version}`).toString("base64url"),
  });
}

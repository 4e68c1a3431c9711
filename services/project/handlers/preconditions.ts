import { ProjectState } from "../../../gen/codex/project/v1/project_pb.js";
import { aborted, failedPrecondition } from "../../../mesh/errors.js";
import { etagMatches } from "../domain/etag.js";
import type { ProjectRow } from "../store/projects.js";

/** Every mutation of an ARCHIVED project fails with FAILED_PRECONDITION (project_service.proto). */
export function assertActive(project: ProjectRow): void {
  if (project.state === ProjectState.ARCHIVED) {
    throw failedPrecondition(
      `project "${project.name}" is archived and read-only`,
      [{ type: "STATE", subject: `projects/${project.id}`, description: "project is ARCHIVED" }],
      "PROJECT_ARCHIVED",
    );
  }
}

/** ABORTED when a non-empty etag does not name the current version. */
export function assertEtag(given: string, kind: string, id: string, version: bigint, what: string): void {
  if (!etagMatches(given, kind, id, version)) {
    throw aborted(`${what} changed since it was read (stale etag); re-read and retry`);
  }
}

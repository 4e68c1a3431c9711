/**
 * The gateway's authorization policy: for every public method, the least a caller must hold.
 * This table (mirrored in docs/adr/0012-gateway-auth.md) is the whole truth about what the
 * gateway lets through; a method missing from it is refused.
 *
 * Levels:
 * - `any`: any authenticated principal.
 * - `user`: a person (JWT user); not API keys, not agents.
 * - `viewer`, `maintainer`, `owner`: that human role or a higher one in the request's project.
 * - `viewer_or_agent`: a human VIEWER or higher, or an AGENT member (reads agents need to run work).
 * - `owner_or_self`: OWNER, or any member acting on its own membership (`selfField`).
 * - `agent`: AGENT principals only (agent JWTs, AGENT-role API keys); people are refused.
 * - `admin`: platform administrators only.
 * Platform administrators pass every level except `agent`.
 *
 * The project is read from the request (`projectField`, else `project_id`, `project.id`,
 * `parent`). Requests that name no project (e.g. GetWorkItem by id) are checked for the kind
 * of principal only (agents off human RPCs, people off agent RPCs); the owning service checks
 * the resource's project against `principal.projectRoles`. The gateway enforces what it can
 * see; services enforce the rest.
 */
export type Level =
  | "any"
  | "user"
  | "viewer"
  | "viewer_or_agent"
  | "maintainer"
  | "owner"
  | "owner_or_self"
  | "agent"
  | "admin";

export interface Rule {
  level: Level;
  /** Dotted path of the request field naming the project, when not a default one. */
  projectField?: string;
  /** Request field naming the principal whose membership is acted on (`owner_or_self`). */
  selfField?: string;
  /** API keys are refused (key management, the audit trail). */
  noApiKeys?: true;
}

const r = (level: Level, extra: Omit<Rule, "level"> = {}): Rule => ({ level, ...extra });

const PROJECT: Record<string, Rule> = {
  CreateProject: r("user"),
  GetProject: r("viewer_or_agent"),
  ListProjects: r("any"),
  UpdateProject: r("maintainer"),
  ArchiveProject: r("owner"),
  AddMember: r("owner"),
  RemoveMember: r("owner_or_self", { selfField: "principal_id" }),
  UpdateMemberRole: r("owner"),
  ListMembers: r("viewer"),
  SubmitVision: r("maintainer"),
  GetVision: r("viewer_or_agent"),
  ListVisionVersions: r("viewer_or_agent"),
  ProposeRequirements: r("maintainer"),
  EditRequirements: r("maintainer"),
  ApproveRequirements: r("owner"),
  RejectRequirements: r("owner"),
  GetRequirements: r("viewer_or_agent"),
  ListRequirements: r("viewer_or_agent"),
  GetBuildReadiness: r("viewer_or_agent"),
  // Owners set policies; the project service may require a platform admin on top.
  SetQuota: r("owner"),
  GetQuota: r("viewer"),
};

const WORKITEM: Record<string, Rule> = {
  CreateWorkItem: r("maintainer"),
  GetWorkItem: r("viewer_or_agent"),
  ListWorkItems: r("viewer_or_agent"),
  UpdateWorkItem: r("maintainer"),
  TransitionWorkItem: r("maintainer"),
  CancelWorkItem: r("maintainer"),
  SetToolRecipe: r("maintainer"),
  GetToolRecipe: r("viewer_or_agent"),
  ListToolRecipeVersions: r("viewer_or_agent"),
  ValidateToolRecipe: r("viewer"),
  RequestApproval: r("maintainer"),
  ApproveRequest: r("maintainer"),
  RejectRequest: r("maintainer"),
  GetApprovalRequest: r("viewer"),
  ListApprovalRequests: r("viewer"),
  GetApprovalPolicy: r("viewer"),
  SetApprovalPolicy: r("owner", { projectField: "policy.project_id" }),
  GetRiskRules: r("viewer"),
  SetRiskRules: r("owner", { projectField: "risk_rules.project_id" }),
  UploadArtifact: r("agent"),
  DownloadArtifact: r("viewer_or_agent"),
  GetArtifact: r("viewer_or_agent"),
  ListArtifacts: r("viewer_or_agent"),
};

const SCHEDULER: Record<string, Rule> = {
  ScheduleWorkItem: r("maintainer"),
  GetTask: r("viewer"),
  ListTasks: r("viewer"),
  RequeueTask: r("maintainer"),
  CancelTask: r("maintainer"),
  StartWorkItemCreation: r("maintainer"),
  GetSaga: r("viewer"),
  ListSagas: r("viewer"),
};

const AGENTMANAGER: Record<string, Rule> = {
  RegisterAgent: r("agent"),
  Connect: r("agent"),
  ClaimRun: r("agent"),
  RenewLease: r("agent"),
  AppendLogs: r("agent"),
  RequestInfo: r("agent"),
  CompleteRun: r("agent"),
  GetAgent: r("viewer"),
  ListAgents: r("viewer"),
  DrainAgent: r("maintainer"),
  UndrainAgent: r("maintainer"),
  DeregisterAgent: r("maintainer"),
  GetRun: r("viewer"),
  ListRuns: r("viewer"),
  CancelRun: r("maintainer"),
  WatchRunLogs: r("viewer"),
  ListRunLogs: r("viewer"),
  GetInfoRequest: r("viewer"),
  ListInfoRequests: r("viewer"),
  AnswerInfoRequest: r("maintainer"),
};

const NOTIFICATION: Record<string, Rule> = {
  CreateSubscription: r("maintainer", { projectField: "subscription.project_id" }),
  GetSubscription: r("viewer"),
  ListSubscriptions: r("viewer"),
  UpdateSubscription: r("maintainer"),
  DeleteSubscription: r("maintainer"),
  ListDeliveries: r("viewer"),
  ListDeadLetters: r("viewer"),
  RedeliverDeadLetter: r("maintainer"),
  TestSubscription: r("maintainer"),
};

// The audit trail is readable by OWNERs and MAINTAINERs, never by API keys.
const AUDIT: Record<string, Rule> = {
  QueryAuditRecords: r("maintainer", { noApiKeys: true }),
  GetAuditRecord: r("maintainer", { noApiKeys: true }),
  VerifyChain: r("admin", { noApiKeys: true }),
  ReplayAggregate: r("maintainer", { noApiKeys: true }),
  ExportAuditRecords: r("maintainer", { noApiKeys: true }),
};

// API keys cannot manage (or enumerate) keys: a leaked key must not mint or find others.
const APIKEYS: Record<string, Rule> = {
  CreateApiKey: r("owner", { noApiKeys: true }),
  GetApiKey: r("maintainer", { noApiKeys: true }),
  ListApiKeys: r("maintainer", { noApiKeys: true }),
  RevokeApiKey: r("owner", { noApiKeys: true }),
};

const IDENTITY: Record<string, Rule> = { WhoAmI: r("any") };

function paths(service: string, rules: Record<string, Rule>): [string, Rule][] {
  return Object.entries(rules).map(([method, rule]) => [`/${service}/${method}`, rule]);
}

/** Rules by gRPC path (`/codex.project.v1.ProjectService/GetProject`). */
export const POLICY: ReadonlyMap<string, Rule> = new Map([
  ...paths("codex.project.v1.ProjectService", PROJECT),
  ...paths("codex.workitem.v1.WorkItemService", WORKITEM),
  ...paths("codex.scheduler.v1.SchedulerService", SCHEDULER),
  ...paths("codex.agentmanager.v1.AgentManagerService", AGENTMANAGER),
  ...paths("codex.notification.v1.NotificationService", NOTIFICATION),
  ...paths("codex.audit.v1.AuditService", AUDIT),
  ...paths("codex.gateway.v1.ApiKeyService", APIKEYS),
  ...paths("codex.gateway.v1.IdentityService", IDENTITY),
]);

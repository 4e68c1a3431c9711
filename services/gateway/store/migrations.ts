import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The gateway's schema. Empty for now: the API-key tables arrive with services/gateway/apikeys
 * (append them here, never edit a released migration).
 */
export const migrations: Migration[] = [];

/**
 * Mints a short-lived development JWT for the local gateway started by `make up`:
 *   npx tsx scripts/dev-token.ts alice            # a user
 *   npx tsx scripts/dev-token.ts agent-1 --agent  # an agent principal
 *   npx tsx scripts/dev-token.ts root --admin     # a platform admin
 * Signed with the HS256 secret in .codex-dev/secrets.json; never for production.
 */
import { SignJWT } from "jose";
import { DEV_JWT, devSecrets } from "./start.js";

const [subject, ...flags] = process.argv.slice(2);
if (!subject) {
  console.error("usage: dev-token.ts <subject> [--agent] [--admin]");
  process.exit(2);
}
const secret = new TextEncoder().encode(devSecrets().JWT_HS256_SECRET);
const claims: Record<string, unknown> = {};
if (flags.includes("--agent")) claims.codex_principal_type = "agent";
if (flags.includes("--admin")) claims.codex_admin = true;
const token = await new SignJWT(claims)
  .setProtectedHeader({ alg: "HS256" })
  .setSubject(subject)
  .setIssuer(DEV_JWT.JWT_ISSUER)
  .setAudience(DEV_JWT.JWT_AUDIENCE)
  .setIssuedAt()
  .setExpirationTime("1h")
  .sign(secret);
console.log(token);

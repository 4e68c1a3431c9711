# syntax=docker/dockerfile:1
# One image per service, from one Dockerfile:
#   docker build --build-arg SERVICE=scheduler -t ghcr.io/codex-orchestrator/scheduler:0.1.0 .
# SERVICE is a folder of services/ (gateway, project, workitem, scheduler, agent-manager,
# notification, audit). The image runs `node dist/services/<SERVICE>/main.js` as a non-root user,
# as istio/base/deployments expect; configuration comes from the environment (README, istio/).
ARG NODE_IMAGE=node:20-bookworm-slim

# ── build: compile TypeScript with the dev dependencies, then drop them ─────────────────────
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ── runtime: compiled JavaScript and production dependencies only ────────────────────────────
FROM ${NODE_IMAGE}
ARG SERVICE
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Fails the build for a SERVICE that does not exist; the link keeps CMD free of a shell, so
# SIGTERM reaches node itself (the services drain on it).
RUN test -n "${SERVICE}" && test -f "dist/services/${SERVICE}/main.js" \
  && ln -s "dist/services/${SERVICE}/main.js" main.js
# The Deployments run as 10001 (securityContext); the same uid here keeps `docker run` non-root.
USER 10001:10001
EXPOSE 50051 9464
CMD ["node", "main.js"]

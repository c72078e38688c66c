# syntax=docker/dockerfile:1
#
# bff-gateway image: Node.js 24 (the image's own), compiled JavaScript only,
# production dependencies only, running as an unprivileged user.
#
#   docker build -t bff-gateway .
#   docker run --init -p 8080:8080 bff-gateway        # development defaults
#
# Run it with an init as PID 1 (`docker run --init`, `init: true` in compose,
# or Kubernetes' default pause/shareProcessNamespace setup) so that signals
# are forwarded and zombies reaped; main.ts handles SIGTERM itself and drains
# in-flight requests for SHUTDOWN_GRACE_SECONDS (default 10 s), so give the
# orchestrator a longer stop timeout than that.
#
# Debian (glibc) rather than Alpine: the `node` devDependency installs a glibc
# Node binary for npm scripts during the build stage.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- base: what both install stages share -----------------------------------
FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV CI=true \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false

# ---- build: full install, compile TypeScript --------------------------------
FROM base AS build
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: production dependencies only ---------------------------------
# A separate clean install rather than `npm prune`, so no dev-only file or
# install-script side effect can reach the final image. No production
# dependency needs an install script.
FROM base AS prod-deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts \
    && npm cache clean --force

# ---- runtime -----------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app

# The app files stay owned by root so the process cannot rewrite its own code.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json: the version reported by /health and service.version.
COPY package.json ./

# The image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080

# Liveness only: /health makes no dependency calls. Uses Node's built-in fetch,
# so the image needs no curl or wget.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

STOPSIGNAL SIGTERM

# Not `npm start` (it builds first, and npm would sit between the signal and
# the process): the image's own Node 24 runs the compiled entry point directly,
# with package.json's config.nodeFlags (a young generation that starts at 16 MB:
# docs/benchmark.md, "the p99 and the garbage collector").
CMD ["node", "--min-semi-space-size=16", "--max-semi-space-size=32", "dist/main.js"]

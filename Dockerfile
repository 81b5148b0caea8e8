# One image for the api and the worker (and the CLI): the command picks.
# Builds the native addon, the Prisma client and the TypeScript apps.
FROM node:20-bookworm AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY apps/core/package.json apps/core/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/cli/package.json apps/cli/
COPY native-vddk/ native-vddk/
# npm ci runs native-vddk's install script: node-gyp builds the addon.
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && test -f native-vddk/build/Release/vddk.node

# `docker compose` runs migrations from this stage: scripts/migrate.mjs needs
# the Prisma schema engine (WebAssembly), a dev dependency.
FROM build AS migrate
CMD ["node", "--no-warnings", "--experimental-wasm-modules", "scripts/migrate.mjs", "deploy"]

FROM build AS pruned
RUN npm prune --omit=dev

# The whole tree is copied (sources beside dist): non-TypeScript files under
# apps/*/src (static pages) stay in the image, and doctor compares
# prisma/migrations with the database.
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=pruned /app /app
RUN chmod +x apps/cli/dist/main.js && ln -s /app/apps/cli/dist/main.js /usr/local/bin/vmrestore
ENV NODE_ENV=production VMRESTORE_HOST=0.0.0.0
USER node
EXPOSE 8080
CMD ["node", "apps/api/dist/server.js"]

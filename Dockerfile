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
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /app /app
ENV NODE_ENV=production VMRESTORE_HOST=0.0.0.0
USER node
EXPOSE 8080
CMD ["node", "apps/api/dist/server.js"]

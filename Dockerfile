# The runtime image that the manifests in dist/ run: `botshard pool` and `botshard router`.
#   docker build -t ghcr.io/botshard/runtime:0.1.0 .
# Only the runtime package and its production dependencies go in: no cdk8s, no constructs, no AWS CDK.

FROM node:20-bookworm-slim AS build
# re2 compiles from source; onnxruntime-node's CPU binaries ship in its package (skip its GPU download).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV ONNXRUNTIME_NODE_INSTALL=skip
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund && npm run build && cd runtime && npm pack --pack-destination /tmp
WORKDIR /app
RUN npm init -y >/dev/null && npm install --omit=dev --no-audit --no-fund /tmp/botshard-runtime-*.tgz \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32

FROM node:20-bookworm-slim
ENV NODE_ENV=production
COPY --from=build /app/node_modules /app/node_modules
# The uid/gid the manifests run as (runAsNonRoot); `sleep` (coreutils) serves the preStop hook.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["node", "/app/node_modules/@botshard/runtime/bin/botshard.js"]
CMD ["--help"]

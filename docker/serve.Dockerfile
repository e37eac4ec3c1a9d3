# The model server (make serve) as an image: the champion of $TASK, pulled from the MLflow registry
# at start and hot-swapped when @champion moves. Same modules as `make serve`, run by ts-node.
#   make image                                 # both images, on the official Node 20 base
#   docker run --rm -p 8080:8080 -e TASK=support-intent -e MLFLOW_TRACKING_URI=http://mlflow:5000 \
#     -e SERVE_TOKENS=... convo-mlops/serve
# BASE_IMAGE defaults to the official image; pin it by digest for reproducible builds
# (node:20-bookworm-slim@sha256:...). `make image-test` builds from a locally debootstrapped base.
ARG BASE_IMAGE=node:20-bookworm-slim

# ---- build: production node_modules only, from the committed lockfile ---------------------------
FROM ${BASE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# docker/build-ca/ is empty unless a TLS-intercepting proxy needs its CA for npm (make image copies it
# there from EXTRA_CA_CERTS); it exists in this stage only, never in the final image.
COPY docker/build-ca/ /tmp/build-ca/
ENV ONNXRUNTIME_NODE_INSTALL=skip
# Serving runs on this platform only: the other platforms' ONNX Runtime binaries (~220 MB) are dropped,
# and so are the packages only notebooks load (danfojs, tfjs, tslab and its zeromq, plotly's full build:
# ~700 MB); make image-test runs the server from this image, so a module it needs cannot go missing unseen.
RUN ca=$(ls /tmp/build-ca/*.crt 2>/dev/null | head -n 1); \
    if [ -n "$ca" ]; then export NODE_EXTRA_CA_CERTS="$ca"; fi; \
    npm ci --omit=dev --no-audit --no-fund --loglevel=error \
 && npm cache clean --force \
 && arch=$(node -p process.arch) \
 && for d in $(find node_modules -path '*/onnxruntime-node/bin/napi-v*' -maxdepth 5 -type d -name 'napi-v*'); do \
      find "$d" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} + ; \
      find "$d/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} + ; \
    done \
 && rm -rf node_modules/danfojs node_modules/@tensorflow node_modules/tslab node_modules/@tslab \
      node_modules/zeromq node_modules/plotly.js-dist node_modules/.bin/tslab

# ---- runtime: non-root, only what serving reads ------------------------------------------------
FROM ${BASE_IMAGE} AS serve
ENV NODE_ENV=production \
    SERVE_HOST=0.0.0.0 \
    SERVE_PORT=8080 \
    MODEL_CACHE_DIR=/var/cache/convo-mlops/models \
    SERVING_LOG_DIR=/var/lib/convo-mlops/serving
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /app app \
 && mkdir -p /var/cache/convo-mlops/models /var/lib/convo-mlops/serving /app/mlflow /app/.cache \
 && chown -R app:app /var/cache/convo-mlops /var/lib/convo-mlops /app/mlflow /app/.cache
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY scripts/serve.ts ./scripts/serve.ts
USER app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD node -e "fetch('http://127.0.0.1:'+(process.env.SERVE_PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Model cache and serving logs are volumes: a restarted container reuses its digest-checked downloads.
VOLUME ["/var/cache/convo-mlops/models", "/var/lib/convo-mlops/serving"]
ENTRYPOINT ["node_modules/.bin/ts-node", "scripts/serve.ts"]
CMD ["--watch", "15"]

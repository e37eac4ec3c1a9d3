# Training and notebooks as an image: the project's own `make setup` (Python venv with MLflow, Jupyter,
# Optuna and the tabular learners; npm packages; the tslab kernel; the pretrained checkpoint), so
# `make lab`, `make retrain`, `make tune` and every other target run inside it exactly as on a laptop.
#   docker run --rm -e MLFLOW_TRACKING_URI=http://mlflow:5000 -v $PWD/data:/app/data convo-mlops/train retrain TASK=support-intent
#   docker run --rm -p 8888:8888 -e MLFLOW_TRACKING_URI=http://mlflow:5000 convo-mlops/train lab LAB_HOST=0.0.0.0
# Python comes from the official Python 3.11 image (requirements.txt needs >= 3.11.5; Debian bookworm's
# python3 is 3.11.2) and Node 20 from BASE_IMAGE, as in serve.Dockerfile. Pin both by digest.
ARG BASE_IMAGE=node:20-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE} AS node

FROM ${PYTHON_IMAGE}
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /app app \
 && mkdir -p /app && chown app:app /app
WORKDIR /app
USER app
ENV ONNXRUNTIME_NODE_INSTALL=skip MLFLOW_HOST=0.0.0.0
# See serve.Dockerfile: a CA for a TLS-intercepting proxy, if make image was given one.
COPY --chown=app:app docker/build-ca/ /tmp/build-ca/
# Dependencies first, so code edits rebuild only the last layers.
COPY --chown=app:app Makefile requirements.txt package.json package-lock.json .npmrc ./
RUN ca=$(ls /tmp/build-ca/*.crt 2>/dev/null | head -n 1); \
    if [ -n "$ca" ]; then export PIP_CERT="$ca" NODE_EXTRA_CA_CERTS="$ca"; fi; \
    make venv node && rm -rf /app/.cache/pip /app/.npm
COPY --chown=app:app . .
RUN ca=$(ls /tmp/build-ca/*.crt 2>/dev/null | head -n 1); \
    if [ -n "$ca" ]; then export PIP_CERT="$ca" NODE_EXTRA_CA_CERTS="$ca"; fi; \
    make kernel weights && rm -rf /app/.cache/pip
EXPOSE 8888
ENTRYPOINT ["make"]
CMD ["help"]

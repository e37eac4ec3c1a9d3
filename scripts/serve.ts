/**
 * make serve: the champion model of a task behind an HTTP API (see src/serve/app.ts).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { cleanText } from '../src/data/clean';
import { isTabularTask, tabularTaskSpec } from '../src/data/tabular-tasks';
import { taskSpec } from '../src/data/tasks';
import { MlflowClient } from '../src/mlflow';
import { buildApp, LISTEN_BACKLOG } from '../src/serve/app';
import { checkTokens, MIN_TOKEN_LENGTH } from '../src/serve/auth';
import { ChampionHolder } from '../src/serve/champion';
import { productionConfigFile, readProductionConfig, resolveTask } from '../src/production/config';
import { loadModel, type Scope, type ScopeOverrides } from '../src/kinds';
import { ModelCache } from '../src/production/model-cache';
import { fullGc, reexecWithMallocSettings } from '../src/cli/memory';
import { log, runMain } from '../src/cli/progress';
import { feedbackPaths, readSliceEstimates } from '../src/feedback/store';

const cfg = loadConfig();

function readTokens(): { tokens: string[]; generated?: string } {
  const fromEnv = (process.env.SERVE_TOKENS ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const file = process.env.SERVE_TOKEN_FILE;
  const fromFile = file
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((t) => t.trim())
        .filter((t) => t && !t.startsWith('#'))
    : [];
  // A token file that holds no token is a mistake to report, not a reason to invent another secret.
  if (file && !fromFile.length) throw new Error(`SERVE_TOKEN_FILE ${file} holds no token`);
  if (fromEnv.length || fromFile.length) {
    checkTokens(fromEnv, 'SERVE_TOKENS');
    checkTokens(fromFile, `SERVE_TOKEN_FILE ${file}`);
    return { tokens: [...fromEnv, ...fromFile] };
  }
  // No tokens configured: make one (kept across restarts) rather than serve without auth.
  const generatedFile = path.join(cfg.root, '.cache', 'serve-token');
  // Ours: an empty or damaged one (a crash while writing it) is made again.
  if (!fs.existsSync(generatedFile) || fs.readFileSync(generatedFile, 'utf8').trim().length < MIN_TOKEN_LENGTH) {
    fs.mkdirSync(path.dirname(generatedFile), { recursive: true });
    fs.writeFileSync(generatedFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  }
  return { tokens: [fs.readFileSync(generatedFile, 'utf8').trim()], generated: generatedFile };
}

/** A deployment's out-of-scope overrides: flag or environment first, then the production config's serving block. */
function scopeOverrides(
  task: string,
  opts: { scopeThreshold?: number; fallbackLabel?: string },
): { values: ScopeOverrides; source: string } {
  const file = productionConfigFile(cfg.paths.productionConfigs, task);
  const serving = fs.existsSync(file) ? readProductionConfig(file).serving : undefined;
  if (opts.scopeThreshold !== undefined && !Number.isFinite(opts.scopeThreshold))
    throw new Error(`--scope-threshold / SCOPE_THRESHOLD must be a number, got ${process.env.SCOPE_THRESHOLD}`);
  const threshold = opts.scopeThreshold ?? serving?.scopeThreshold;
  const fallbackLabel = opts.fallbackLabel ?? serving?.fallbackLabel;
  const source =
    opts.scopeThreshold !== undefined
      ? '--scope-threshold / SCOPE_THRESHOLD'
      : serving?.scopeThreshold !== undefined
        ? `${path.relative(cfg.root, file)} serving.scopeThreshold`
        : '';
  return {
    values: { ...(threshold !== undefined ? { threshold } : {}), ...(fallbackLabel ? { fallbackLabel } : {}) },
    source,
  };
}

function describeScope(s: Scope, source: string): string {
  const rule = `out-of-scope rule: ${s.score} score below ${s.threshold.toPrecision(6)} -> "${s.fallbackLabel}"`;
  return s.threshold !== s.modelThreshold
    ? `${rule} (OVERRIDDEN by ${source}; the model's own threshold is ${s.modelThreshold.toPrecision(6)}, for ${s.recall * 100}% validation recall)`
    : `${rule} (the model's, for ${s.recall * 100}% in-scope validation recall; calibration temperature ${s.temperature.toFixed(3)})`;
}

const program = new Command('serve')
  .description(
    'Serve models:/<task>@<alias> from the MLflow registry: POST /predict, POST /invocations, GET /ping /health /version /metrics /docs. Tokens: SERVE_TOKENS (comma-separated) or SERVE_TOKEN_FILE; otherwise one is generated in .cache/serve-token.',
  )
  .option('--task <name>', 'task = registered model name (default: the only promoted task)')
  .option('--model <name>', 'registered model name (default: the task)')
  .option('--alias <alias>', 'registry alias to serve', 'champion')
  .option('--host <host>', 'address to listen on', process.env.SERVE_HOST ?? '127.0.0.1')
  .option('--port <port>', 'port', (v) => Number.parseInt(v, 10), Number(process.env.SERVE_PORT ?? 8080))
  .option(
    '--watch <seconds>',
    'how often to check whether the alias moved (hot reload)',
    (v) => Number.parseFloat(v),
    15,
  )
  .option('--max-batch <n>', 'most texts per request', (v) => Number.parseInt(v, 10), 256)
  .option(
    '--max-queue <n>',
    'scoring requests admitted at once; more are answered 503 with Retry-After',
    (v) => Number.parseInt(v, 10),
    256,
  )
  .option(
    '--log-dir <dir>',
    'folder of the daily serving logs (predictions-YYYY-MM-DD.jsonl) that `make monitor` reads; SERVING_LOG_DIR',
    cfg.paths.servingLogs,
  )
  .option(
    '--log-retention-days <n>',
    'days of serving-log files kept; older ones are deleted as each new day starts (SERVING_LOG_RETENTION_DAYS)',
    (v) => Number.parseInt(v, 10),
    Number.parseInt(process.env.SERVING_LOG_RETENTION_DAYS ?? '90', 10),
  )
  .option('--cache-dir <dir>', 'model cache (MODEL_CACHE_DIR)', cfg.paths.modelCache)
  .option(
    '--data-dir <dir>',
    'data folder whose feedback/<task>/ production slice /metrics reports (production_accuracy)',
    path.join(cfg.root, 'data'),
  )
  .option(
    '--scope-threshold <x>',
    "override the model's out-of-scope threshold (SCOPE_THRESHOLD; else the production config's serving.scopeThreshold)",
    Number.parseFloat,
    process.env.SCOPE_THRESHOLD !== undefined ? Number.parseFloat(process.env.SCOPE_THRESHOLD) : undefined,
  )
  .option(
    '--fallback-label <label>',
    "label of out-of-scope answers (SCOPE_FALLBACK_LABEL; default: the model's, out_of_scope)",
    process.env.SCOPE_FALLBACK_LABEL,
  )
  .action(
    (opts: {
      task?: string;
      model?: string;
      alias: string;
      host: string;
      port: number;
      watch: number;
      maxBatch: number;
      maxQueue: number;
      logDir: string;
      logRetentionDays: number;
      cacheDir: string;
      dataDir: string;
      scopeThreshold?: number;
      fallbackLabel?: string;
    }) =>
      runMain(async () => {
        if (!Number.isInteger(opts.logRetentionDays) || opts.logRetentionDays < 1)
          throw new Error(`--log-retention-days / SERVING_LOG_RETENTION_DAYS must be a whole number of days >= 1`);
        const task = resolveTask(cfg.paths.productionConfigs, opts.task);
        const spec = isTabularTask(task) ? undefined : taskSpec(task);
        const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
        const overrides = scopeOverrides(task, opts);
        const holder = new ChampionHolder(
          client,
          opts.model ?? task,
          opts.alias,
          new ModelCache(client, opts.cacheDir, log),
          {
            log,
            afterRelease: fullGc(),
            load: async (dir) => {
              const p = await loadModel(dir, overrides.values);
              if (p.input === 'text' && p.scope) log(describeScope(p.scope, overrides.source));
              return p;
            },
          },
        );
        await holder.start(); // the registry's champion, or the last verified one in the cache while MLflow is down
        holder.watch(opts.watch * 1000);
        const { tokens, generated } = readTokens();
        const cleaning = spec?.cleaning;
        const app = await buildApp({
          models: holder,
          tokens,
          positiveLabel: spec ? spec.positiveLabel : tabularTaskSpec(task).positiveLabel,
          preprocess: cleaning ? (t) => cleanText(t, cleaning) : undefined,
          maxBatchTexts: opts.maxBatch,
          maxQueue: opts.maxQueue,
          servingLogDir: opts.logDir,
          servingLogRetentionDays: opts.logRetentionDays,
          readSlice: () => readSliceEstimates(feedbackPaths(path.resolve(opts.dataDir), task)),
          logger: false,
        });
        await app.listen({ host: opts.host, port: opts.port, backlog: LISTEN_BACKLOG });
        const url = `http://${opts.host}:${opts.port}`;
        log(
          `serving ${task} v${holder.model.version} (@${opts.alias}) on ${url}  (docs: ${url}/docs, metrics: ${url}/metrics)`,
        );
        if (generated)
          log(
            `bearer token (from ${path.relative(cfg.root, generated)}): curl -H "Authorization: Bearer $(cat ${path.relative(cfg.root, generated)})" -H 'content-type: application/json' -d '{"texts":["my card was charged twice"]}' ${url}/predict`,
          );
        // Once: Ctrl-C reaches this process from the terminal and again through the relay that started it.
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          await app.close();
          await holder.close();
          await client.close();
          process.exit(0);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      }),
  );
if (!reexecWithMallocSettings()) program.parse();

/**
 * make eval-offtopic: does the served model say "out of scope" to queries that belong to no queue?
 * Loads models:/<task>@<alias> exactly as make serve does (model cache, kind loader, scope.json), then
 * judges the project's off-topic set and the task's test split. Logged to MLflow and reports/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { cleanText } from '../src/data/clean';
import { readPrepared } from '../src/data/prepare';
import { taskSpec } from '../src/data/tasks';
import { offTopicCheck, readOffTopic } from '../src/open-intent/off-topic';
import { loadModel, textPredictor } from '../src/kinds';
import { MlflowClient, withRun } from '../src/mlflow';
import { ModelCache } from '../src/production/model-cache';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();

const program = new Command('eval-offtopic')
  .description(
    "Share of the project's off-topic queries (data/eval/off-topic.txt) a registered model answers out of scope, and share of the task's test queries it keeps in scope.",
  )
  .option('--task <name>', 'text task', 'support-intent')
  .option('--alias <alias>', 'registry alias of models:/<task>@<alias>', 'champion')
  .option('--off-topic <file>', 'off-topic queries, one per line', path.join(cfg.root, 'data', 'eval', 'off-topic.txt'))
  .option('--scope-threshold <x>', "judge with this threshold instead of the model's", Number.parseFloat)
  .option('--processed-dir <dir>', 'where `make prepare` wrote the tasks', path.join(cfg.root, 'data', 'processed'))
  .option('--reports-dir <dir>', 'where the report goes', path.join(cfg.root, 'reports'))
  .action(
    (opts: {
      task: string;
      alias: string;
      offTopic: string;
      scopeThreshold?: number;
      processedDir: string;
      reportsDir: string;
    }) =>
      runMain(async () => {
        const spec = taskSpec(opts.task);
        const clean = (t: string) => (spec.cleaning ? cleanText(t, spec.cleaning) : t);
        const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
        const mv = await client.getModelVersionByAlias(opts.task, opts.alias);
        if (!mv) throw new Error(`no models:/${opts.task}@${opts.alias} in the registry; promote a run first`);
        const p = textPredictor(
          await loadModel(
            await new ModelCache(client, cfg.paths.modelCache, log).fetch(mv),
            opts.scopeThreshold !== undefined ? { threshold: opts.scopeThreshold } : {},
          ),
        );
        try {
          if (!p.scope)
            throw new Error(
              `${opts.task} version ${mv.version} was saved without scope.json (before out-of-scope detection existed): retrain it`,
            );
          const offTopic = readOffTopic(opts.offTopic).map(clean);
          const test = readPrepared(path.join(opts.processedDir, opts.task)).test.map((e) => e.text);
          const r = await offTopicCheck(p.scope, p.labels, offTopic, test);
          log(
            `==> ${opts.task} v${mv.version} (${p.kind}, ${p.scope.score} score, threshold ${r.threshold.toPrecision(5)}): ` +
              `${(r.offTopicRejected * 100).toFixed(1)}% of ${r.offTopic} off-topic queries out of scope, ` +
              `${(r.inScopeKept * 100).toFixed(1)}% of ${r.inScope} test queries kept in scope`,
          );
          for (const a of r.accepted.slice(0, 15)) log(`    accepted: "${a.text}" -> ${a.label}`);
          fs.mkdirSync(opts.reportsDir, { recursive: true });
          const file = path.join(opts.reportsDir, `offtopic-${opts.task}-v${mv.version}.json`);
          fs.writeFileSync(
            file,
            `${JSON.stringify({ model: mv.name, version: mv.version, run_id: mv.run_id, ...r }, null, 2)}\n`,
          );
          await withRun(
            client,
            {
              experiment: `${opts.task}-open-intent`,
              runName: `offtopic-v${mv.version}`,
              source: 'scripts/eval-offtopic.ts',
              tags: { stage: 'evaluate', 'model.version': mv.version, 'model.run_id': mv.run_id ?? '' },
            },
            async (run) => {
              await run.logParams({
                model: `models:/${opts.task}/${mv.version}`,
                kind: p.kind,
                score: p.scope!.score,
                threshold: r.threshold,
                overridden: opts.scopeThreshold !== undefined,
                off_topic_file: path.relative(cfg.root, opts.offTopic),
              });
              await run.logMetrics({ offtopic_rejected: r.offTopicRejected, in_scope_kept: r.inScopeKept });
              await run.logText(JSON.stringify(r, null, 2), 'open_intent/offtopic.json');
            },
          );
          log(`==> report: ${path.relative(cfg.root, file)}`);
        } finally {
          await p.release();
          await client.close();
        }
      }),
  );

program.parse();

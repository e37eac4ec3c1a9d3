/**
 * make eval-open: the open intent classification protocol on a prepared intent task. For each known
 * ratio and seed, a random share of the intents is known, the model trains on them only, and every
 * out-of-scope score it supports is judged on the held-out intents. One MLflow parent run per
 * invocation, one child run per ratio and seed, a JSON + Markdown report under reports/.
 * Interrupted, the same command skips finished runs and resumes a fine-tune from its checkpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig } from '../src/config';
import { readPrepared } from '../src/data/prepare';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { MlflowClient, withRun, type ActiveRun } from '../src/mlflow';
import { OPEN_MODELS, runOpenIntent, type OpenModel, type OpenRunResult } from '../src/open-intent/run';
import { openIntentMarkdown, openIntentMetrics, summariseOpenRuns } from '../src/open-intent/report';
import type { FineTuneEvent } from '../src/train/finetune';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const list = (v: string) => v.split(',').map((x) => Number(x.trim()));

interface Opts {
  task: string;
  model: OpenModel;
  known: number[];
  seeds: number[];
  recall: number;
  epochs?: number;
  groupByLength: boolean;
  maxTrain?: number;
  workDir: string;
  processedDir: string;
  reportsDir: string;
  mlflow: boolean;
}

const program = new Command('eval-open')
  .description(
    'Open intent classification (Zhang et al. 2021 protocol): hold out 1 - KNOWN of the intents, train on the rest, ' +
      'report known accuracy, macro-F1 over known + open, AUROC and FPR@95TPR for MSP, energy, Mahalanobis and ' +
      'Mahalanobis + nearest neighbour in the pretrained encoder (mahalanobis+knn).',
  )
  .addOption(
    new Option('--task <name>', 'intent task (run `make prepare` first)').choices(TASK_NAMES).default('support-intent'),
  )
  .addOption(new Option('--model <kind>', 'model trained on the known intents').choices(OPEN_MODELS).default('bert'))
  .option('--known <ratios>', 'known-intent ratios, comma-separated (0.25,0.5,0.75)', list, [0.75])
  .option('--seeds <list>', 'seeds of the known-intent draw (and of training), comma-separated', list, [0, 1, 2])
  .option('--recall <x>', 'in-scope validation recall the thresholds keep', Number.parseFloat, 0.95)
  .option('--epochs <n>', 'BERT: fine-tuning epochs (default: the recipe)', (v) => Number.parseInt(v, 10))
  .option('--group-by-length', 'BERT: batches of similar-length texts (same recipe otherwise, ~1.9x faster)', false)
  .option('--max-train <n>', 'train on a seeded subset of N known-intent examples (quick runs)', (v) =>
    Number.parseInt(v, 10),
  )
  .option('--work-dir <dir>', 'models, checkpoints and per-run results', path.join(cfg.root, '.cache', 'eval-open'))
  .option('--processed-dir <dir>', 'where `make prepare` wrote the tasks', path.join(cfg.root, 'data', 'processed'))
  .option('--reports-dir <dir>', 'where the report goes', path.join(cfg.root, 'reports'))
  .option('--no-mlflow', 'do not log to MLflow')
  .action((opts: Opts) =>
    runMain(async () => {
      const spec = taskSpec(opts.task);
      const full = readPrepared(path.join(path.resolve(opts.processedDir), opts.task));
      const checkpointDir = path.join(cfg.paths.pretrained, cfg.pretrained.name);
      const tag = `${opts.task}-${opts.model}${opts.maxTrain ? `-n${opts.maxTrain}` : ''}${opts.epochs ? `-e${opts.epochs}` : ''}${opts.groupByLength ? '-grouped' : ''}`;
      const one = async (knownRatio: number, seed: number, run?: ActiveRun): Promise<OpenRunResult> => {
        const data = { ...full };
        const workDir = path.join(path.resolve(opts.workDir), `${tag}-k${knownRatio}-s${seed}`);
        log(`==> ${opts.model} on ${Math.round(knownRatio * 100)}% known intents, seed ${seed} (${workDir})`);
        const r = await runOpenIntent({
          spec,
          data,
          model: opts.model,
          knownRatio,
          seed,
          recall: opts.recall,
          checkpointDir,
          workDir,
          maxTrain: opts.maxTrain,
          finetune: {
            ...(opts.epochs !== undefined ? { epochs: opts.epochs } : {}),
            ...(opts.groupByLength ? { groupByLength: true } : {}),
          },
          onFineTuneEvent: progress(),
        });
        const m = r.methods[r.chosen]!;
        log(
          `    chosen ${r.chosen}: AUROC ${m.testAuroc.toFixed(4)} (MSP ${r.methods.msp!.testAuroc.toFixed(4)}), ` +
            `FPR@95TPR ${m.testFprAt95Tpr.toFixed(3)}, known accuracy ${(r.knownAccuracy * 100).toFixed(2)}% ` +
            `(closed ${(r.knownAccuracyClosed * 100).toFixed(2)}%), macro-F1 known+open ${r.macroF1All.toFixed(4)}`,
        );
        if (run) {
          await run.logParams({
            task: opts.task,
            model: opts.model,
            known_ratio: knownRatio,
            seed,
            recall: opts.recall,
            known_intents: r.knownIntents.length,
            ...(opts.maxTrain ? { max_train: opts.maxTrain } : {}),
            ...(opts.epochs ? { epochs: opts.epochs } : {}),
            group_by_length: opts.groupByLength,
          });
          await run.logMetrics(openIntentMetrics(r));
          await run.setTags({ 'open.chosen_score': r.chosen });
          await run.logText(JSON.stringify(r, null, 2), 'open_intent/result.json');
        }
        return r;
      };
      const runs: OpenRunResult[] = [];
      const body = async (parent?: ActiveRun) => {
        for (const knownRatio of opts.known)
          for (const seed of opts.seeds) {
            if (parent && client)
              runs.push(
                await withRun(
                  client,
                  {
                    experiment: `${opts.task}-open-intent`,
                    runName: `${opts.model}-known${knownRatio}-seed${seed}`,
                    parentRunId: parent.runId,
                    source: 'scripts/eval-open.ts',
                    tags: { stage: 'evaluate', model: opts.model },
                  },
                  (run) => one(knownRatio, seed, run),
                ),
              );
            else runs.push(await one(knownRatio, seed));
          }
        const summary = summariseOpenRuns(runs);
        const md = openIntentMarkdown(opts.task, summary, runs);
        fs.mkdirSync(opts.reportsDir, { recursive: true });
        const base = path.join(opts.reportsDir, `eval-open-${tag}-known${opts.known.join('_')}`);
        fs.writeFileSync(`${base}.json`, `${JSON.stringify({ summary, runs }, null, 2)}\n`);
        fs.writeFileSync(`${base}.md`, md);
        if (parent) {
          await parent.logParams({
            task: opts.task,
            model: opts.model,
            known_ratios: opts.known.join(','),
            seeds: opts.seeds.join(','),
            recall: opts.recall,
          });
          const flat: Record<string, number> = {};
          for (const s of summary)
            for (const [k, v] of Object.entries(s.mean)) {
              flat[`k${s.knownRatio}_${k}_mean`] = v;
              flat[`k${s.knownRatio}_${k}_std`] = s.std[k]!;
            }
          await parent.logMetrics(flat);
          await parent.logText(md, 'open_intent/report.md');
        }
        console.log(`\n${md}`);
        log(`==> report: ${base}.md${parent ? `; MLflow parent run ${parent.runId}` : ''}`);
      };
      const client = opts.mlflow ? MlflowClient.fromEnv({ journalDir: cfg.paths.journal }) : undefined;
      if (client)
        await withRun(
          client,
          {
            experiment: `${opts.task}-open-intent`,
            runName: `eval-open-${opts.model}-known${opts.known.join('_')}`,
            source: 'scripts/eval-open.ts',
            tags: { stage: 'evaluate', model: opts.model },
          },
          body,
        );
      else await body();
      await client?.close();
    }),
  );

/** A progress bar per fine-tune (BERT only; the other kinds train in seconds). */
function progress(): (e: FineTuneEvent) => void {
  let bar: SingleBar | undefined;
  return (e) => {
    if (e.type === 'start') {
      bar = new SingleBar(
        { format: '    fine-tune [{bar}] {value}/{total} steps | loss {loss} | {eps} ex/s | ETA {eta_formatted}' },
        Presets.shades_classic,
      );
      bar.start(e.totalSteps, e.resumedFromStep ?? 0, { loss: '-', eps: '-' });
    } else if (e.type === 'step')
      bar?.update(e.globalStep, { loss: e.loss.toFixed(3), eps: e.examplesPerSecond.toFixed(0) });
    else if (e.type === 'early-stop' || (e.type === 'epoch' && bar && bar.getProgress() >= 1)) bar?.stop();
  };
}

program.parse();

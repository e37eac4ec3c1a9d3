/**
 * make baseline: TF-IDF + logistic regression per task, the bar BERT must beat. Trains on
 * data/processed/<task>/train, evaluates on validation and test, and logs the run to MLflow with
 * the model (MLmodel included), metrics, confusion matrix and classification report.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../src/config';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { MlflowClient, withRun, type ActiveRun } from '../src/mlflow';
import { DEFAULT_BASELINE } from '../src/kinds/tfidf-logreg/model';
import { readPrepared } from '../src/data/prepare';
import { runBaseline } from '../src/kinds/tfidf-logreg/train';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('train-baseline')
  .description(
    'Train and evaluate the TF-IDF + logistic regression baseline on prepared data (run `make prepare` first), logged to MLflow.',
  )
  .addOption(new Option('--task <names...>', 'tasks').choices(TASK_NAMES).default(['support-category']))
  .option('--epochs <n>', 'training epochs', (v) => Number.parseInt(v, 10), DEFAULT_BASELINE.logreg.epochs)
  .option('--lr <x>', 'Adam learning rate', Number.parseFloat, DEFAULT_BASELINE.logreg.learningRate)
  .option('--no-class-weights', 'do not weight the loss by inverse class frequency')
  .option('--processed-dir <dir>', 'where `make prepare` wrote the tasks', path.join(cfg.root, 'data', 'processed'))
  .option('--no-mlflow', 'do not log to MLflow')
  .action(
    (opts: {
      task: string[];
      epochs: number;
      lr: number;
      classWeights: boolean;
      processedDir: string;
      mlflow: boolean;
    }) =>
      runMain(async () => {
        const client = opts.mlflow ? MlflowClient.fromEnv({ journalDir: cfg.paths.journal }) : undefined;
        const config = {
          ...DEFAULT_BASELINE,
          useClassWeights: opts.classWeights,
          logreg: { ...DEFAULT_BASELINE.logreg, epochs: opts.epochs, learningRate: opts.lr },
        };
        for (const name of opts.task) {
          const spec = taskSpec(name);
          const data = readPrepared(path.join(path.resolve(opts.processedDir), name));
          const body = async (run?: ActiveRun) => {
            const r = await runBaseline(spec, data, config, run);
            const t = r.test;
            log(
              `==> ${name} baseline: test accuracy ${(t.accuracy * 100).toFixed(2)}%, macro-F1 ${t.macro.f1.toFixed(4)}${t.rocAuc !== undefined ? `, ROC AUC ${t.rocAuc.toFixed(4)}` : ''} (${r.trainSeconds.toFixed(1)} s, ${r.model.tfidf.vocabulary.length} features)${run ? `, run ${run.runId}` : ''}`,
            );
          };
          if (client)
            await withRun(
              client,
              {
                experiment: name,
                runName: 'baseline-tfidf-logreg',
                source: 'scripts/train-baseline.ts',
                tags: { stage: 'train', model: 'tfidf-logreg' },
              },
              body,
            );
          else await body();
        }
        await client?.close();
      }),
  );
program.parse();

/**
 * make baseline: TF-IDF + logistic regression per task, the bar BERT must beat. Trains on
 * data/processed/<task>/train, evaluates on validation and test, and logs the run to MLflow with
 * the model (MLmodel included), metrics, confusion matrix and classification report.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig } from '../src/config';
import { readSplit } from '../src/data/prepare';
import { classWeights, encodeLabels, type LabelMap } from '../src/data/labels';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { evaluationMetrics } from '../src/evaluate/metrics';
import { evaluationHtml, evaluationJson } from '../src/evaluate/report';
import { MlflowClient, withRun } from '../src/mlflow';
import { DEFAULT_BASELINE, evaluateBaseline, saveBaseline, trainBaseline } from '../src/train/baseline';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('train-baseline')
  .description('Train and evaluate the TF-IDF + logistic regression baseline on prepared data (run `make prepare` first), logged to MLflow.')
  .addOption(new Option('--task <names...>', 'tasks').choices(TASK_NAMES).default(['support-category']))
  .option('--epochs <n>', 'training epochs', (v) => Number.parseInt(v, 10), DEFAULT_BASELINE.logreg.epochs)
  .option('--lr <x>', 'Adam learning rate', Number.parseFloat, DEFAULT_BASELINE.logreg.learningRate)
  .option('--no-class-weights', 'do not weight the loss by inverse class frequency')
  .option('--processed-dir <dir>', 'where `make prepare` wrote the tasks', path.join(cfg.root, 'data', 'processed'))
  .option('--no-mlflow', 'do not log to MLflow')
  .action((opts: { task: string[]; epochs: number; lr: number; classWeights: boolean; processedDir: string; mlflow: boolean }) =>
    runMain(async () => {
      const client = opts.mlflow ? MlflowClient.fromEnv({ journalDir: cfg.paths.journal }) : undefined;
      for (const name of opts.task) {
        const spec = taskSpec(name);
        const dir = path.join(path.resolve(opts.processedDir), name);
        const [train, validation, test] = (['train', 'validation', 'test'] as const).map((s) => readSplit(dir, s));
        const labelMap = JSON.parse(fs.readFileSync(path.join(dir, 'label_map.json'), 'utf8')) as LabelMap;
        const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { digests: Record<string, string> };
        const weights = classWeights(encodeLabels(train!.map((e) => e.label), labelMap), labelMap.labels.length);
        const config = { ...DEFAULT_BASELINE, useClassWeights: opts.classWeights, logreg: { ...DEFAULT_BASELINE.logreg, epochs: opts.epochs, learningRate: opts.lr } };

        const body = async (run?: import('../src/mlflow').ActiveRun) => {
          await run?.logParams({ model: 'tfidf-logreg', task: name, ngram_range: config.tfidf.ngramRange.join('-'), min_df: config.tfidf.minDf, sublinear_tf: config.tfidf.sublinearTf, epochs: config.logreg.epochs, batch_size: config.logreg.batchSize, learning_rate: config.logreg.learningRate, l2: config.logreg.l2, seed: config.logreg.seed, class_weights: config.useClassWeights, 'data.digest.train': manifest.digests.train!.slice(0, 32) });
          const bar = process.stderr.isTTY ? new SingleBar({ format: `  ${name} [{bar}] epoch {value}/{total} loss {loss}`, stream: process.stderr }, Presets.shades_classic) : undefined;
          bar?.start(config.logreg.epochs, 0, { loss: '-' });
          const curve = { x: [] as number[], y: [] as number[] };
          const t0 = Date.now();
          const model = trainBaseline(train!, labelMap, weights, config, (e) => {
            curve.x.push(e.epoch);
            curve.y.push(e.loss);
            bar?.update(e.epoch, { loss: e.loss.toFixed(4) });
          });
          bar?.stop();
          const trainSeconds = (Date.now() - t0) / 1000;
          for (const [i, loss] of curve.y.entries()) await run?.logMetric('train_loss', loss, curve.x[i]);
          const val = evaluateBaseline(model, validation!, spec.positiveLabel);
          const tst = evaluateBaseline(model, test!, spec.positiveLabel);
          await run?.logMetrics({ ...evaluationMetrics(val, 'val_'), ...evaluationMetrics(tst, 'test_'), train_seconds: trainSeconds, num_features: model.tfidf.vocabulary.length });
          log(`==> ${name} baseline: test accuracy ${(tst.accuracy * 100).toFixed(2)}%, macro-F1 ${tst.macro.f1.toFixed(4)}${tst.rocAuc !== undefined ? `, ROC AUC ${tst.rocAuc.toFixed(4)}` : ''} (${trainSeconds.toFixed(1)} s, ${model.tfidf.vocabulary.length} features)`);
          if (!run) return;
          const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baseline-'));
          fs.writeFileSync(path.join(tmp, 'evaluation_test.json'), evaluationJson(tst));
          fs.writeFileSync(path.join(tmp, 'evaluation_test.html'), evaluationHtml(`${name}: TF-IDF + logistic regression (test)`, tst, curve));
          await run.logArtifact(path.join(tmp, 'evaluation_test.json'), 'eval');
          await run.logArtifact(path.join(tmp, 'evaluation_test.html'), 'eval');
          const modelDir = path.join(tmp, 'model');
          saveBaseline(model, modelDir);
          await run.client.logModel(run.runId, modelDir, {
            artifactPath: 'model',
            flavors: { ts_tfidf_logreg: { loader_module: 'src/train/baseline', loader: 'loadBaseline', model_file: 'model.json', label_map: 'label_map.json' } },
            signature: { inputs: [{ name: 'text', type: 'string' }], outputs: [{ name: 'label', type: 'string' }, ...labelMap.labels.map((l) => ({ name: `p(${l})`, type: 'double' as const }))] },
            inputExample: test!.slice(0, 2).map((e) => ({ text: e.text })),
          });
          fs.rmSync(tmp, { recursive: true, force: true });
        };
        if (client) await withRun(client, { experiment: name, runName: 'baseline-tfidf-logreg', source: 'scripts/train-baseline.ts', tags: { stage: 'train', model: 'tfidf-logreg' } }, body);
        else await body();
      }
      await client?.close();
    }),
  );
program.parse();

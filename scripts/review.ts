/**
 * make review / make review-import / make review-status: the review queue of the served model.
 * A batch of served predictions to label (uncertain ones plus a random control sample), the labels
 * back with provenance (training rows to data/incoming/, control rows to the production slice), and
 * the production slice's estimate per model version with its 95% interval.
 */
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { readPrepared } from '../src/data/prepare';
import { MlflowClient } from '../src/mlflow';
import { productionConfigFile, readProductionConfig, resolveTask } from '../src/production/config';
import { checkpointEmbedder } from '../src/kinds/scope/view';
import { buildReviewBatch, importReviewed, logImport, logReviewBatch } from '../src/feedback/review';
import { MIN_CONTROL_SHARE, type BatchPolicy, type Candidate } from '../src/feedback/select';
import {
  applyCorrections,
  confidentLearningIssues,
  issueCandidate,
  outOfFoldProbabilities,
} from '../src/feedback/label-issues';
import { encodeLabels } from '../src/data/labels';
import { formatInterval, type SliceEstimate } from '../src/feedback/slice';
import {
  feedbackPaths,
  readBatches,
  readReviewed,
  readSliceEstimates,
  writeLabelStudioExport,
} from '../src/feedback/store';
import { LabelStudioClient, labelledRows } from '../src/feedback/label-studio';
import { labelStudioToken } from '../src/feedback/label-studio-server';
import { reviewLabels } from '../src/feedback/review-import';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const dataDir = path.join(cfg.root, 'data');
const int = (v: string) => Number.parseInt(v, 10);

const program = new Command('review').description(
  "The review queue of a task's served model: batches to label, labels back into training, and the production slice.",
);

program
  .command('build')
  .description(
    'build a review batch from the serving log of the served model version: out-of-scope and low-margin answers ' +
      'plus a uniform random control sample; writes data/feedback/<task>/batches/<batch>.{json,csv} and logs an MLflow run',
  )
  .option('--task <name>', 'task (default: the only promoted task)')
  .option('--size <n>', 'rows in the batch', int, 200)
  .option('--control-share <x>', `share of random control rows (>= ${MIN_CONTROL_SHARE})`, Number.parseFloat, 0.2)
  .option('--config <file>', "the task's production config (default config/production/<task>.json)")
  .option('--version <v>', 'model version whose predictions to read (default: the promoted one)')
  .option('--days <n>', 'look at the last n days of traffic', Number.parseFloat, 30)
  .option('--seed <n>', 'random seed of the control sample', int, 0)
  .option('--log-dir <path>', 'serving log folder (SERVING_LOG_DIR)', cfg.paths.servingLogs)
  .option('--processed-dir <dir>', 'prepared data (its texts are never sent)', cfg.paths.processed)
  .option('--data-dir <dir>', 'data folder (feedback/, incoming/, quarantine/ under it)', dataDir)
  .option(
    '--reason <r>',
    'uncertain (out-of-scope and low-margin answers), or label-issues (training and reviewed rows that confident ' +
      'learning finds likely mislabelled, for a second look)',
    'uncertain',
  )
  .option('--format <f>', 'csv (fill in the label column), or label-studio (also import it into Label Studio)', 'csv')
  .option('--no-embeddings', 'collapse only folded-text repeats, not encoder near-duplicates (cosine >= 0.95)')
  .option('--no-mlflow', 'do not log the batch to MLflow')
  .action(
    (o: {
      task?: string;
      config?: string;
      size: number;
      controlShare: number;
      version?: string;
      days: number;
      seed: number;
      logDir: string;
      processedDir: string;
      dataDir: string;
      embeddings: boolean;
      reason: string;
      format: string;
      mlflow: boolean;
    }) =>
      runMain(async () => {
        const task = resolveTask(cfg.paths.productionConfigs, o.task);
        const production = readProductionConfig(o.config ?? productionConfigFile(cfg.paths.productionConfigs, task));
        if (!['csv', 'label-studio'].includes(o.format)) throw new Error(`--format must be csv or label-studio`);
        if (!['uncertain', 'label-issues'].includes(o.reason))
          throw new Error('--reason must be uncertain or label-issues');
        const policy: BatchPolicy = {
          size: o.size,
          controlShare: o.controlShare,
          seed: o.seed,
          ...(o.reason === 'label-issues' ? { reasons: ['label_issue'] as const } : {}),
        };
        const splits = readPrepared(path.join(path.resolve(o.processedDir), task));
        const p = feedbackPaths(path.resolve(o.dataDir), task);
        let labelIssues: Candidate[] | undefined;
        if (o.reason === 'label-issues') {
          // The training rows and the reviewed rows, each scored by a model that did not see it.
          const labelled = applyCorrections(
            [
              ...splits.train,
              ...readReviewed(p, 'training').map((r) => ({ id: r.item_id, text: r.text, label: r.label })),
            ],
            readReviewed(p, 'correction'),
          ).rows;
          const map = production.labelMap;
          const probs = outOfFoldProbabilities(labelled, map, { seed: o.seed });
          const { issues } = confidentLearningIssues(
            encodeLabels(
              labelled.map((e) => e.label),
              map,
            ),
            probs,
            map.labels.length,
          );
          log(
            `==> confident learning over ${labelled.length} labelled rows of ${task}: ${issues.length} likely label errors`,
          );
          const now = new Date();
          labelIssues = issues.map((is) =>
            issueCandidate(labelled[is.index]!, is, probs, map.labels, production.model.version, now),
          );
        }
        const embedder = o.embeddings
          ? await checkpointEmbedder(path.join(cfg.paths.pretrained, cfg.pretrained.name), 64)
          : undefined;
        try {
          const built = await buildReviewBatch({
            task,
            model: production.model.name,
            version: o.version ?? production.model.version,
            classes: production.labelMap.labels,
            logDir: o.logDir,
            since: new Date(Date.now() - o.days * 86_400_000),
            splits,
            paths: p,
            policy,
            ...(labelIssues ? { labelIssues } : {}),
            ...(embedder
              ? {
                  embed: async (texts: readonly string[]) => {
                    const { data, dim } = await embedder.embed(texts);
                    return texts.map((_, i) => data.subarray(i * dim, (i + 1) * dim));
                  },
                }
              : {}),
          });
          const { counts, skipped } = built.selection;
          log(
            `==> review batch ${built.manifest.batch_id}: ${built.manifest.items.length} rows of ${built.served} served ` +
              `predictions of ${built.manifest.model} v${built.manifest.version} (out of scope ${counts.out_of_scope}, ` +
              `low margin ${counts.low_margin}, label issues ${counts.label_issue}, control ${counts.control}); ` +
              `passed over: ${skipped.heldOut} in the validation/test split, ${skipped.inTraining} in the training ` +
              `data, ${skipped.repeats} repeats, ${skipped.nearDuplicates} near-duplicates, ${skipped.alreadySent} ` +
              `sent before`,
          );
          if (o.format === 'label-studio') {
            const ls = new LabelStudioClient(cfg.labelStudio.url, labelStudioToken(cfg.labelStudio));
            const project = await ls.ensureProject(task, built.manifest.labels);
            const n = await ls.importBatch(project.id, built.manifest);
            log(
              `    Label Studio: ${n} tasks with the model's answers as pre-annotations in project ${project.id}` +
                `${project.created ? ' (created)' : ''}: ${cfg.labelStudio.url}/projects/${project.id}`,
            );
            log(`    then:     make review-import TASK=${task} FROM=label-studio`);
          } else {
            log(`    label it: fill in the label column of ${path.relative(cfg.root, built.files.csv)}`);
            log(`    then:     make review-import TASK=${task} FILE=${path.relative(cfg.root, built.files.csv)}`);
          }
          if (o.mlflow) {
            const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
            try {
              log(`    MLflow run ${await logReviewBatch(client, built, policy)}`);
            } finally {
              await client.close();
            }
          }
        } finally {
          await embedder?.release();
        }
      }),
  );

program
  .command('import')
  .description(
    'import a labelled batch (the CSV with its label column filled in, or JSONL with item_id,batch_id,text,label): ' +
      'bad rows are quarantined with their row number and reason; nothing is imported twice',
  )
  .option('--file <path>', 'the labelled CSV or JSONL')
  .option('--from <source>', "label-studio: the finished annotations of the task's Label Studio project")
  .option('--task <name>', 'task (default: the only promoted task)')
  .option('--config <file>', "the task's production config (default config/production/<task>.json)")
  .option('--annotator <name>', 'who labelled it, when the file does not say', os.userInfo().username)
  .option('--data-dir <dir>', 'data folder (feedback/, incoming/, quarantine/ under it)', dataDir)
  .option('--no-mlflow', 'do not log the import to MLflow')
  .action(
    (o: {
      file?: string;
      from?: string;
      task?: string;
      config?: string;
      annotator: string;
      dataDir: string;
      mlflow: boolean;
    }) =>
      runMain(async () => {
        const task = resolveTask(cfg.paths.productionConfigs, o.task);
        const production = readProductionConfig(o.config ?? productionConfigFile(cfg.paths.productionConfigs, task));
        const p = feedbackPaths(path.resolve(o.dataDir), task);
        if ((o.file === undefined) === (o.from === undefined))
          throw new Error('give one of --file or --from label-studio');
        let file = o.file ? path.resolve(o.file) : '';
        if (o.from !== undefined) {
          if (o.from !== 'label-studio') throw new Error(`--from must be label-studio`);
          const ls = new LabelStudioClient(cfg.labelStudio.url, labelStudioToken(cfg.labelStudio));
          const project = await ls.ensureProject(task, reviewLabels(production.labelMap.labels));
          // The export is kept as a file and imported like any other: one path, and a record of what came back.
          file = writeLabelStudioExport(
            p,
            labelledRows(await ls.exportTasks(project.id), await ls.userEmails()),
            new Date(),
          );
          log(`==> Label Studio project ${project.id}: finished annotations -> ${path.relative(cfg.root, file)}`);
        }
        const out = importReviewed(file, {
          task,
          model: production.model.name,
          paths: p,
          now: new Date(),
          defaultAnnotator: o.annotator,
        });
        const d = out.destinations;
        log(
          `==> imported ${out.accepted} reviewed rows of ${task}: ${d.training} to training (data/incoming/${task}/), ` +
            `${d.slice} to the production slice, ${d.correction} corrections, ${d.out_of_scope} out of scope; ` +
            `${out.quarantined.length} quarantined`,
        );
        for (const b of out.quarantined.slice(0, 20)) log(`    row ${b.row} (line ${b.line}): ${b.reason}`);
        if (out.quarantined.length > 20) log(`    ... and ${out.quarantined.length - 20} more`);
        if (out.quarantineFile) log(`    quarantined rows: ${path.relative(cfg.root, out.quarantineFile)}`);
        printSlice(out.slice);
        if (o.mlflow) {
          const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
          try {
            log(`    MLflow run ${await logImport(client, task, file, out)}`);
          } finally {
            await client.close();
          }
        }
      }),
  );

program
  .command('status')
  .description("the task's review batches and the production slice's estimate per model version (95% intervals)")
  .option('--task <name>', 'task (default: the only promoted task)')
  .option('--data-dir <dir>', 'data folder', dataDir)
  .action((o: { task?: string; dataDir: string }) =>
    runMain(async () => {
      const task = resolveTask(cfg.paths.productionConfigs, o.task);
      const p = feedbackPaths(path.resolve(o.dataDir), task);
      const batches = [...readBatches(p).values()];
      log(
        `==> ${task}: ${batches.length} review batches, ${batches.reduce((n, b) => n + b.items.length, 0)} rows sent`,
      );
      log(
        `    reviewed: ${readReviewed(p, 'training').length} to training, ${readReviewed(p, 'slice').length} in the ` +
          `production slice, ${readReviewed(p, 'out_of_scope').length} out of scope`,
      );
      printSlice(readSliceEstimates(p));
    }),
  );

function printSlice(slice: readonly SliceEstimate[]): void {
  for (const e of slice) {
    log(`    production slice, version ${e.version}:`);
    log(`      accuracy           ${formatInterval(e.accuracy)}`);
    log(`      in-scope traffic   ${formatInterval(e.inScopeRate)}`);
    log(`      in-scope kept      ${formatInterval(e.inScopeKept)}`);
    log(`      kept and right     ${formatInterval(e.keptAndRight)}`);
    log(`      off-topic rejected ${formatInterval(e.offTopicRejected)}`);
  }
}

program.parse();

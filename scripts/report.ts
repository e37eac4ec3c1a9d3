/**
 * make report: the weekly churn report from the serving log: conversations per A/B/C bucket, counts
 * over time, and the phrases that drove each churn prediction (occlusion against the champion).
 * Written as HTML and CSV under reports/, and mailed when SMTP is configured (SMTP_HOST, REPORT_TO).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { cleanText } from '../src/data/clean';
import { isTabularTask, tabularTaskSpec } from '../src/data/tabular-tasks';
import { taskSpec } from '../src/data/tasks';
import { textPredictor } from '../src/kinds';
import { MlflowClient } from '../src/mlflow';
import { streamServingLog, type ServingRecord } from '../src/monitor/serving-log';
import { ModelCache } from '../src/production/model-cache';
import {
  CHURN_CSV_HEADER,
  churnCsvLine,
  ChurnSummary,
  CONVERSATIONS,
  CUSTOMERS,
  occlusion,
  type ChurnRow,
} from '../src/report/churn';
import { mailReport, smtpFromEnv } from '../src/report/mail';
import { ChampionHolder } from '../src/serve/champion';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('report')
  .description(
    'Weekly churn report (HTML + CSV) from the serving log; mailed through SMTP when SMTP_HOST and REPORT_TO are set.',
  )
  .option('--task <name>', 'a churn task', 'conversation-churn')
  .option('--model <name>', 'registered model name (default: the task)')
  .option(
    '--log-dir <path>',
    'serving log folder (daily files) or one log file; SERVING_LOG_DIR',
    cfg.paths.servingLogs,
  )
  .option('--cache-dir <dir>', 'model cache (MODEL_CACHE_DIR)', cfg.paths.modelCache)
  .option('--days <n>', 'report period in days', Number.parseFloat, 7)
  .option('--out <dir>', 'output folder', path.join(cfg.root, 'reports'))
  .action((opts: { task: string; model?: string; logDir: string; cacheDir: string; days: number; out: string }) =>
    runMain(async () => {
      const tabular = isTabularTask(opts.task);
      const spec = tabular ? undefined : taskSpec(opts.task);
      const positive = tabular ? tabularTaskSpec(opts.task).positiveLabel : spec!.positiveLabel;
      if (!positive)
        throw new Error(
          `${opts.task} is not a churn task (no positive label); use conversation-churn, churn-intent or telco-churn`,
        );
      const since = new Date(Date.now() - opts.days * 86_400_000);
      const modelName = opts.model ?? opts.task;
      const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
      const holder = new ChampionHolder(client, modelName, 'champion', new ModelCache(client, opts.cacheDir, log), {
        log,
      });
      await holder.refresh();
      const served = holder.model.predictor;
      // One record at a time, from the serving log to the CSV and the summary: a week of traffic never sits
      // in memory (the tabular drivers and the text occlusions are scored as each record is read).
      const drivers: (r: ServingRecord) => Promise<ChurnRow['top_phrases']> =
        served.input === 'record'
          ? async (r) =>
              r.bucket === 'C' || !r.features
                ? []
                : (await served.explain([r.features]))[0]!
                    .filter((a) => a.effect > 0)
                    .slice(0, 3)
                    .map((a) => ({ phrase: `${a.column} = ${a.value}`, impact: a.effect, group: a.column }))
          : (() => {
              const predictor = textPredictor(served);
              const pos = predictor.labels.indexOf(positive);
              const cleaning = spec?.cleaning;
              const score = async (texts: string[]) => {
                const probs = await predictor.predictProba(cleaning ? texts.map((t) => cleanText(t, cleaning)) : texts);
                return texts.map((_, i) => probs[i * predictor.labels.length + pos]!);
              };
              return async (r: ServingRecord) => (r.bucket === 'C' ? [] : occlusion(r.text ?? '', score));
            })();
      const period = { from: since.toISOString().slice(0, 10), to: new Date().toISOString().slice(0, 10) };
      fs.mkdirSync(opts.out, { recursive: true });
      const base = path.join(opts.out, `churn-${opts.task}-${period.to}`);
      const summary = new ChurnSummary();
      const csvFd = fs.openSync(`${base}.csv.partial`, 'w');
      try {
        fs.writeSync(csvFd, `${CHURN_CSV_HEADER}\n`);
        await streamServingLog(opts.logDir, { model: modelName, since }, async (r) => {
          if (r.bucket === undefined) return;
          const row: ChurnRow = {
            ts: r.ts,
            ref: (served.input === 'record' ? r.record_id : r.text_sha256) ?? '',
            bucket: r.bucket,
            p_churn: r.probabilities[positive] ?? 0,
            label: r.label,
            top_phrases: await drivers(r),
          };
          summary.add(row);
          fs.writeSync(csvFd, `${churnCsvLine(row)}\n`);
        });
      } finally {
        fs.closeSync(csvFd);
      }
      if (summary.total === 0) {
        fs.rmSync(`${base}.csv.partial`, { force: true });
        await holder.close();
        await client.close();
        throw new Error(
          `no churn predictions (with buckets) of ${modelName} in ${opts.logDir} since ${since.toISOString().slice(0, 10)}`,
        );
      }
      fs.renameSync(`${base}.csv.partial`, `${base}.csv`);
      const html = summary.html(opts.task, period, tabular ? CUSTOMERS : CONVERSATIONS);
      fs.writeFileSync(`${base}.html`, html);
      const counts = (b: string) => summary.counts[b] ?? 0;
      log(
        `==> ${summary.total} ${tabular ? 'customers' : 'conversations'}: A ${counts('A')} (call), B ${counts('B')} (offer), C ${counts('C')} (retained); model v${holder.model.version}`,
      );
      log(`report: ${path.relative(cfg.root, base)}.html and .csv`);
      const smtp = smtpFromEnv();
      if (smtp) {
        const id = await mailReport(
          smtp,
          `Churn report ${opts.task} ${period.from}..${period.to}: ${counts('A')} to call`,
          html,
          [{ filename: path.basename(`${base}.csv`), path: `${base}.csv` }],
        );
        log(`mailed to ${smtp.to.join(', ')} via ${smtp.host}:${smtp.port} (${id})`);
      } else {
        log('not mailed: set SMTP_HOST and REPORT_TO (and SMTP_PORT, SMTP_USER, SMTP_PASS, REPORT_FROM) to send it');
      }
      await holder.close();
      await client.close();
    }),
  );
program.parse();

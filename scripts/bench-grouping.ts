/**
 * make bench-grouping: the same fine-tune twice in one session, random batches then length-grouped
 * batches (--group-by-length), each as `make finetune` runs it (its own process and MLflow run).
 * Wall-clock, training time and test accuracy of both, and their ratio, go to bench/grouping.json
 * and to MLflow (experiment `benchmarks`, run `group-by-length`).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../src/config';
import { TASK_NAMES } from '../src/data/tasks';
import { MlflowClient, withRun } from '../src/mlflow';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();

interface Variant {
  name: 'random' | 'grouped';
  wall_seconds: number;
  train_seconds: number;
  test_accuracy: number;
  test_macro_f1: number;
  best_epoch: number;
  run_id: string;
}

/** Runs scripts/finetune.ts with `args`, echoing its output; resolves with the output and the wall-clock. */
function finetune(args: string[]): Promise<{ output: string; seconds: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      path.join(cfg.root, 'node_modules/.bin/ts-node'),
      [path.join(cfg.root, 'scripts/finetune.ts'), ...args],
      {
        cwd: cfg.root,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve({ output, seconds: (Date.now() - t0) / 1000 })
        : reject(new Error(`finetune exited ${code}`)),
    );
  });
}

const program = new Command('bench-grouping')
  .description(
    'Fine-tune twice, random vs length-grouped batches, in one session; writes bench/grouping.json and logs to MLflow.',
  )
  .addOption(new Option('--task <name>', 'task').choices(TASK_NAMES).default('support-intent'))
  .option('--out <file>', 'results file', path.join(cfg.root, 'bench', 'grouping.json'))
  .option('--finetune-args <args>', 'extra arguments for both fine-tunes (e.g. "--epochs 1 --max-train 2000")', '')
  .action((opts: { task: string; out: string; finetuneArgs: string }) =>
    runMain(async () => {
      const extra = opts.finetuneArgs.split(/\s+/).filter(Boolean);
      const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
      const variants: Variant[] = [];
      for (const name of ['random', 'grouped'] as const) {
        const workDir = path.join(os.tmpdir(), `bench-grouping-${process.pid}-${name}`);
        log(`==> fine-tune with ${name} batches (${opts.task}${extra.length ? ` ${extra.join(' ')}` : ''})`);
        try {
          const { output, seconds } = await finetune([
            '--task',
            opts.task,
            '--fresh',
            '--work-dir',
            workDir,
            '--no-quantize',
            ...(name === 'grouped' ? ['--group-by-length'] : []),
            ...extra,
          ]);
          const runId = /, run ([0-9a-f]{32})/.exec(output)?.[1];
          if (!runId) throw new Error('the fine-tune printed no MLflow run id');
          const run = await client.getRun(runId);
          const metric = (k: string) => run.data.metrics.find((m) => m.key === k)?.value ?? NaN;
          const state = JSON.parse(fs.readFileSync(path.join(workDir, 'final-state.json'), 'utf8')) as {
            trainSeconds: number;
            bestEpoch: number;
          };
          variants.push({
            name,
            wall_seconds: seconds,
            train_seconds: state.trainSeconds,
            test_accuracy: metric('test_accuracy'),
            test_macro_f1: metric('test_macro_f1'),
            best_epoch: state.bestEpoch + 1,
            run_id: runId,
          });
        } finally {
          fs.rmSync(workDir, { recursive: true, force: true });
        }
      }
      const [random, grouped] = variants as [Variant, Variant];
      const report = {
        date: new Date().toISOString(),
        task: opts.task,
        finetune_args: extra.join(' '),
        machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), node: process.version },
        note:
          'speedup = random wall-clock / grouped wall-clock (whole make finetune: training, validation, export); ' +
          'train_speedup on training steps only; accuracy_delta_points = grouped - random test accuracy, in points.',
        random,
        grouped,
        speedup: random.wall_seconds / grouped.wall_seconds,
        train_speedup: random.train_seconds / grouped.train_seconds,
        accuracy_delta_points: (grouped.test_accuracy - random.test_accuracy) * 100,
      };
      fs.mkdirSync(path.dirname(opts.out), { recursive: true });
      fs.writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);
      log(
        `==> length-grouped batches: ${report.speedup.toFixed(2)}x shorter wall-clock (${random.wall_seconds.toFixed(0)} s -> ` +
          `${grouped.wall_seconds.toFixed(0)} s; training ${report.train_speedup.toFixed(2)}x), test accuracy ` +
          `${(random.test_accuracy * 100).toFixed(2)}% -> ${(grouped.test_accuracy * 100).toFixed(2)}% ` +
          `(${report.accuracy_delta_points >= 0 ? '+' : ''}${report.accuracy_delta_points.toFixed(2)} points); ` +
          `${path.relative(cfg.root, opts.out)}`,
      );
      await withRun(
        client,
        {
          experiment: 'benchmarks',
          runName: 'group-by-length',
          source: 'scripts/bench-grouping.ts',
          tags: { bench: 'grouping' },
        },
        async (run) => {
          await run.logParams({
            task: opts.task,
            finetune_args: extra.join(' ') || '(defaults)',
            cpu: report.machine.cpu,
          });
          await run.logMetrics({
            speedup: report.speedup,
            train_speedup: report.train_speedup,
            accuracy_delta_points: report.accuracy_delta_points,
            random_wall_seconds: random.wall_seconds,
            grouped_wall_seconds: grouped.wall_seconds,
            random_test_accuracy: random.test_accuracy,
            grouped_test_accuracy: grouped.test_accuracy,
          });
          await run.setTags({ random_run_id: random.run_id, grouped_run_id: grouped.run_id });
          await run.logArtifact(opts.out, 'bench');
        },
      );
      await client.close();
    }),
  );
program.parse();

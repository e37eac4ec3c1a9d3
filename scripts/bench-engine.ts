/**
 * make bench: speed and memory of the BERT engine (MiniLM-L6 shape, batch 16 x 64 and 16 x 128):
 * training examples/s (forward + backward + clipping + AdamW), inference examples/s (fp32 and int8
 * graphs) and peak resident memory, side by side in the same run with PyTorch on the CPU running the
 * same model, batch and sequence length (scripts/bench/torch_bert.py), reported as ratios. Each
 * measurement runs in its own process so its peak memory is its own. Results go to bench/engine.json
 * and to MLflow (experiment `benchmarks`).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { MlflowClient, withRun } from '../src/mlflow';
import { buildInferGraph, shapedWeights } from '../src/engine/bert-graph';
import { OrtClassifier } from '../src/engine/encoder-onnx';
import { TrainStep } from '../src/engine/train-step';
import { AdamW, clipScale, DEFAULT_ADAMW } from '../src/train/optimizer';
import { dropoutRates, initialParams, noiseSeed, targets, trainableParams } from '../src/train/finetune';
import { DEFAULT_FINETUNE } from '../src/train/recipe';
import { seededRandom } from '../src/data/split';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const NUM_LABELS = 77; // Banking77
const checkpoint = path.join(cfg.paths.pretrained, cfg.pretrained.name);
type Mode = 'train' | 'infer' | 'infer-int8';

interface Measure {
  examples_per_second: number;
  ms_per_batch: number;
  peak_rss_mb: number;
  /** Training only: time inside ONNX Runtime vs in the optimizer. */
  ms_graph?: number;
  ms_optimizer?: number;
}

const peakRssMb = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;

/** One measurement, in this process (the child side). */
async function measure(mode: Mode, batch: number, seq: number, steps: number, threads?: number): Promise<Measure> {
  const { config, params } = initialParams(checkpoint, 'mean', NUM_LABELS, 42);
  const rnd = seededRandom(1);
  const enc = {
    inputIds: Int32Array.from({ length: batch * seq }, () => 1000 + Math.floor(rnd() * 28000)),
    attentionMask: new Int32Array(batch * seq).fill(1),
    tokenTypeIds: new Int32Array(batch * seq),
    batchSize: batch,
    seqLen: seq,
  };
  const warmup = 3;
  if (mode === 'train') {
    const step = await TrainStep.create(
      {
        config,
        pooling: 'mean',
        numLabels: NUM_LABELS,
        trainable: trainableParams(config, DEFAULT_FINETUNE),
        dropout: dropoutRates(config),
      },
      { threads },
    );
    const opt = new AdamW({ ...DEFAULT_ADAMW, learningRate: 1e-4 });
    const target = targets(
      Array.from({ length: batch }, (_, i) => i % NUM_LABELS),
      NUM_LABELS,
    );
    let graph = 0;
    let optimizer = 0;
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      const r = await step.run(params, enc, target, noiseSeed(42, i));
      const t1 = performance.now();
      opt.update(params, r.grads, r.rowGrads, 1e-4, clipScale(r.gradNorm, 1));
      if (i >= warmup) {
        graph += t1 - t0;
        optimizer += performance.now() - t1;
      }
    }
    const ms = (graph + optimizer) / steps;
    return {
      examples_per_second: (1000 * batch) / ms,
      ms_per_batch: ms,
      peak_rss_mb: peakRssMb(),
      ms_graph: graph / steps,
      ms_optimizer: optimizer / steps,
    };
  }
  const weights = shapedWeights(config, params, NUM_LABELS);
  const model = buildInferGraph({
    config,
    weights,
    pooling: 'mean',
    numLabels: NUM_LABELS,
    quantize: mode === 'infer-int8' ? 'int8' : undefined,
  });
  const clf = await OrtClassifier.create(model, config, NUM_LABELS, { threads });
  for (let i = 0; i < warmup; i++) await clf.probs(enc);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await clf.probs(enc);
  const ms = (performance.now() - t0) / steps;
  return { examples_per_second: (1000 * batch) / ms, ms_per_batch: ms, peak_rss_mb: peakRssMb() };
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

const program = new Command('bench-engine')
  .description(
    'Benchmark BERT training and inference (this engine vs PyTorch CPU, same model/batch/length); writes bench/engine.json and logs to MLflow.',
  )
  .option('--batch <n>', 'batch size', (v) => Number.parseInt(v, 10), 16)
  .option('--seq <lengths>', 'sequence lengths, comma-separated', '64,128')
  .option('--train-steps <n>', 'measured training steps per configuration', (v) => Number.parseInt(v, 10), 10)
  .option('--infer-steps <n>', 'measured inference batches per configuration', (v) => Number.parseInt(v, 10), 30)
  .option('--threads <n>', 'threads for both engines (default: all cores)', (v) => Number.parseInt(v, 10))
  .option('--no-torch', 'skip the PyTorch side (no .cache/bench-venv)')
  .option('--out <file>', 'results file', path.join(cfg.root, 'bench', 'engine.json'))
  .option('--no-mlflow', 'do not log to MLflow')
  .option('--child <spec>', 'internal: run one measurement (mode,batch,seq,steps) and print it as JSON')
  .action(
    (opts: {
      batch: number;
      seq: string;
      trainSteps: number;
      inferSteps: number;
      threads?: number;
      torch: boolean;
      out: string;
      mlflow: boolean;
      child?: string;
    }) =>
      runMain(async () => {
        if (opts.child) {
          const [mode, b, s, n] = opts.child.split(',');
          process.stdout.write(
            `${JSON.stringify(await measure(mode as Mode, Number(b), Number(s), Number(n), opts.threads))}\n`,
          );
          return;
        }
        const torchPy = path.join(cfg.root, '.cache', 'bench-venv', 'bin', 'python');
        if (opts.torch && !fs.existsSync(torchPy))
          throw new Error(
            `PyTorch is not installed for the benchmark: run \`make bench-venv\` first (or pass --no-torch)`,
          );
        const ours = (mode: Mode, seq: number, steps: number): Measure =>
          JSON.parse(
            execFileSync(
              path.join(cfg.root, 'node_modules/.bin/ts-node'),
              [
                __filename,
                '--child',
                `${mode},${opts.batch},${seq},${steps}`,
                ...(opts.threads ? ['--threads', String(opts.threads)] : []),
              ],
              { cwd: cfg.root, encoding: 'utf8' },
            )
              .trim()
              .split('\n')
              .pop()!,
          ) as Measure;
        const torch = (mode: Mode, seq: number, steps: number): Measure =>
          JSON.parse(
            execFileSync(
              torchPy,
              [
                path.join(cfg.root, 'scripts/bench/torch_bert.py'),
                checkpoint,
                mode,
                String(opts.batch),
                String(seq),
                String(steps),
              ],
              {
                encoding: 'utf8',
                env: { ...process.env, ...(opts.threads ? { OMP_NUM_THREADS: String(opts.threads) } : {}) },
              },
            )
              .trim()
              .split('\n')
              .pop()!,
          ) as Measure;
        const results: Record<string, unknown>[] = [];
        for (const seq of opts.seq.split(',').map(Number)) {
          const row: Record<string, unknown> = { batch: opts.batch, seq };
          for (const [mode, steps] of [
            ['train', opts.trainSteps],
            ['infer', opts.inferSteps],
            ['infer-int8', opts.inferSteps],
          ] as const) {
            log(`==> ${mode} ${opts.batch} x ${seq}: this engine (ONNX Runtime)...`);
            const a = ours(mode, seq, steps);
            log(
              `    ${round(a.examples_per_second)} examples/s, ${round(a.ms_per_batch)} ms/batch, peak RSS ${round(a.peak_rss_mb, 0)} MB${a.ms_graph !== undefined ? ` (graph ${round(a.ms_graph)} ms + optimizer ${round(a.ms_optimizer!)} ms)` : ''}`,
            );
            const entry: Record<string, unknown> = { engine: a };
            if (opts.torch) {
              log(`==> ${mode} ${opts.batch} x ${seq}: PyTorch CPU...`);
              const t = torch(mode, seq, steps);
              log(
                `    ${round(t.examples_per_second)} examples/s, ${round(t.ms_per_batch)} ms/batch, peak RSS ${round(t.peak_rss_mb, 0)} MB -> speed ratio ${round(a.examples_per_second / t.examples_per_second, 2)}x, memory ratio ${round(a.peak_rss_mb / t.peak_rss_mb, 2)}x`,
              );
              Object.assign(entry, {
                pytorch: t,
                speed_ratio: a.examples_per_second / t.examples_per_second,
                memory_ratio: a.peak_rss_mb / t.peak_rss_mb,
              });
            }
            row[mode] = entry;
          }
          results.push(row);
        }
        const report = {
          date: new Date().toISOString(),
          machine: {
            cpu: os.cpus()[0]?.model ?? 'unknown',
            cores: os.availableParallelism(),
            memory_gb: round(os.totalmem() / 2 ** 30),
            node: process.version,
          },
          model: `${cfg.pretrained.name} (${NUM_LABELS}-way head, mean pooling)`,
          note: 'speed_ratio = engine examples/s / PyTorch examples/s; memory_ratio = engine peak RSS / PyTorch peak RSS. Training = forward + backward + clipping + AdamW.',
          results,
        };
        fs.mkdirSync(path.dirname(opts.out), { recursive: true });
        fs.writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);
        log(`==> results in ${path.relative(cfg.root, opts.out)}`);
        if (opts.mlflow) {
          const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
          await withRun(
            client,
            {
              experiment: 'benchmarks',
              runName: 'engine',
              source: 'scripts/bench-engine.ts',
              tags: { bench: 'engine' },
            },
            async (run) => {
              await run.logParams({
                batch: opts.batch,
                seq: opts.seq,
                model: report.model,
                cpu: report.machine.cpu,
                cores: report.machine.cores,
                threads: opts.threads ?? report.machine.cores,
              });
              const metrics: Record<string, number> = {};
              for (const r of results) {
                for (const mode of ['train', 'infer', 'infer-int8'] as const) {
                  const e = r[mode] as {
                    engine: Measure;
                    pytorch?: Measure;
                    speed_ratio?: number;
                    memory_ratio?: number;
                  };
                  const key = `${mode.replace('-', '_')}_s${r.seq}`;
                  metrics[`${key}_examples_per_second`] = e.engine.examples_per_second;
                  metrics[`${key}_peak_rss_mb`] = e.engine.peak_rss_mb;
                  if (e.pytorch) {
                    metrics[`${key}_torch_examples_per_second`] = e.pytorch.examples_per_second;
                    metrics[`${key}_torch_peak_rss_mb`] = e.pytorch.peak_rss_mb;
                    metrics[`${key}_speed_ratio`] = e.speed_ratio!;
                    metrics[`${key}_memory_ratio`] = e.memory_ratio!;
                  }
                }
              }
              await run.logMetrics(metrics);
              await run.logArtifact(opts.out, 'bench');
              log(`    MLflow run ${run.runId}`);
            },
          );
          await client.close();
        }
      }),
  );
program.parse();

/**
 * The production config of one task (config/production/<task>.json): which registry version was
 * promoted, of which model kind, with which recipe (the run's params), label map and data digest.
 * Written by make promote; read, and validated, by retrain, serve, monitor, report and rollback.
 * One file per task, so promoting one task never changes another's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { MODEL_KINDS, type KindId } from '../kinds';
import { writeFileAtomic } from '../io/files';

const LabelMapSchema = z.object({
  labels: z.array(z.string()).min(2, 'a label map needs at least two labels'),
  label2id: z.record(z.string(), z.number().int()),
  id2label: z.record(z.string(), z.string()),
});

export const ProductionConfigSchema = z.object({
  task: z.string().min(1),
  kind: z.enum(Object.keys(MODEL_KINDS) as [KindId, ...KindId[]]),
  model: z.object({
    name: z.string().min(1),
    version: z.string().regex(/^\d+$/, 'a registry version number'),
    alias: z.string().min(1),
    uri: z.string().startsWith('models:/'),
    runId: z.string().regex(/^[0-9a-f]{32}$/, 'an MLflow run id'),
    source: z.string().min(1),
    flavor: z.string().min(1),
  }),
  hyperparameters: z.record(z.string(), z.string()),
  checkpoint: z.string().nullable(),
  maxLength: z.number().int().positive().nullable(),
  labelMap: LabelMapSchema,
  dataDigest: z.string().nullable(),
  metrics: z.record(z.string(), z.number()),
  /** This deployment's own out-of-scope rule, over the one saved with the model (SCOPE_THRESHOLD wins over both). */
  serving: z.object({ scopeThreshold: z.number().optional(), fallbackLabel: z.string().min(1).optional() }).optional(),
  provenance: z.object({
    notebook: z.string().nullable(),
    gitCommit: z.string().nullable(),
    /** Digest of the notebooks' exported code the run was made with (see src/export/provenance.ts). */
    exportsDigest: z.string().nullable().optional(),
    promotedAt: z.string(),
  }),
});
export type ProductionConfig = z.infer<typeof ProductionConfigSchema>;

export class ProductionConfigError extends Error {
  override name = 'ProductionConfigError';
}

/** Where a task's production config lives under the configs folder. */
export function productionConfigFile(dir: string, task: string): string {
  if (!/^[\w-]+$/.test(task)) throw new ProductionConfigError(`"${task}" is not a task name`);
  return path.join(dir, `${task}.json`);
}

/** Reads and validates a production config; says what to run when it is missing and what is wrong when invalid. */
export function readProductionConfig(file: string): ProductionConfig {
  if (!fs.existsSync(file))
    throw new ProductionConfigError(
      `${file} does not exist. Promote a run first: make promote RUN=<run id> (or METRIC=val_macro_f1 TASK=<task>)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ProductionConfigError(`${file} is not valid JSON (${(err as Error).message}); run make promote again`);
  }
  const parsed = ProductionConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new ProductionConfigError(
      `${file} is not a valid production config:\n${issues}\nRun make promote again to rewrite it.`,
    );
  }
  return parsed.data;
}

/** Validates, then writes atomically (a reader never sees half a file). */
export function writeProductionConfig(file: string, config: ProductionConfig): void {
  writeFileAtomic(file, `${JSON.stringify(ProductionConfigSchema.parse(config), null, 2)}\n`);
}

/** Tasks that have a production config, sorted. */
export function promotedTasks(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /^[\w-]+\.json$/.test(f))
    .map((f) => f.slice(0, -5))
    .sort();
}

/**
 * The task a production command acts on: the one given (TASK=...), else the only promoted one.
 * With several promoted tasks and none given it refuses, rather than act on an arbitrary one.
 */
export function resolveTask(dir: string, given: string | undefined): string {
  if (given) return given;
  const tasks = promotedTasks(dir);
  if (tasks.length === 1) return tasks[0]!;
  if (tasks.length === 0)
    throw new ProductionConfigError(
      `No task is promoted yet (no ${dir}/<task>.json). Promote one: make promote RUN=<run id>, or give TASK=<task>.`,
    );
  throw new ProductionConfigError(`Several tasks are promoted (${tasks.join(', ')}): say which one with TASK=<task>.`);
}

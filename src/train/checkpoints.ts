/**
 * Training checkpoints: weights, optimizer moments and the loop's position, written so that a crash
 * at any moment leaves the previous complete checkpoint readable. Each checkpoint is its own folder
 * (ckpt-<step>); `latest.json` is switched to it by an atomic rename only once every file is on disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readSafetensors, serializeSafetensors, type Tensor } from '../engine/safetensors';
import type { Params } from '../engine/train-step';
import type { AdamWState } from './optimizer';

const EpochRecord = z.object({
  epoch: z.number(),
  trainLoss: z.number(),
  valMacroF1: z.number(),
  valAccuracy: z.number(),
  /** Validation cross-entropy with the training class weights (absent in checkpoints of older versions). */
  valLoss: z.number().optional(),
  seconds: z.number(),
});
export type EpochRecord = z.infer<typeof EpochRecord>;

export const TrainStateSchema = z.object({
  version: z.literal(1),
  /** Hash of everything that determines the run (settings, data digest, base checkpoint). */
  fingerprint: z.string(),
  epoch: z.number().int(),
  stepInEpoch: z.number().int(),
  globalStep: z.number().int(),
  bestMetric: z.number(),
  bestEpoch: z.number().int(),
  badEpochs: z.number().int(),
  stopped: z.boolean(),
  history: z.array(EpochRecord),
  /** Per-step training loss so far (for curves after a resume). */
  lossCurve: z.array(z.tuple([z.number(), z.number()])),
  trainSeconds: z.number(),
  /** Training examples processed (the last batch of an epoch may be short). */
  examples: z.number().int(),
});
export type TrainState = z.infer<typeof TrainStateSchema>;

const writeAtomic = (file: string, data: Buffer | string) => {
  fs.writeFileSync(`${file}.tmp`, data);
  fs.renameSync(`${file}.tmp`, file);
};

const toTensors = (p: Params, prefix = '') =>
  new Map<string, Tensor>([...p].map(([k, v]) => [prefix + k, { shape: [v.length], data: v }]));

export function saveCheckpoint(dir: string, state: TrainState, params: Params, opt: AdamWState): string {
  const name = `ckpt-${state.globalStep}`;
  const target = path.join(dir, name);
  fs.rmSync(target, { recursive: true, force: true });
  fs.mkdirSync(target, { recursive: true });
  fs.writeFileSync(path.join(target, 'weights.safetensors'), serializeSafetensors(toTensors(params)));
  const moments = new Map([...toTensors(opt.m, 'm.'), ...toTensors(opt.v, 'v.')]);
  fs.writeFileSync(
    path.join(target, 'optimizer.safetensors'),
    serializeSafetensors(moments, { step: String(opt.step) }),
  );
  fs.writeFileSync(path.join(target, 'state.json'), JSON.stringify(state));
  writeAtomic(path.join(dir, 'latest.json'), JSON.stringify({ checkpoint: name }));
  for (const old of fs.readdirSync(dir))
    if (old.startsWith('ckpt-') && old !== name) fs.rmSync(path.join(dir, old), { recursive: true, force: true });
  return target;
}

export function loadCheckpoint(dir: string): { state: TrainState; params: Params; opt: AdamWState } | undefined {
  const pointer = path.join(dir, 'latest.json');
  if (!fs.existsSync(pointer)) return undefined;
  const { checkpoint } = JSON.parse(fs.readFileSync(pointer, 'utf8')) as { checkpoint: string };
  const at = path.join(dir, checkpoint);
  const state = TrainStateSchema.parse(JSON.parse(fs.readFileSync(path.join(at, 'state.json'), 'utf8')));
  const params: Params = new Map(
    [...readSafetensors(path.join(at, 'weights.safetensors')).tensors].map(([k, t]) => [k, t.data]),
  );
  const o = readSafetensors(path.join(at, 'optimizer.safetensors'));
  const m: Params = new Map();
  const v: Params = new Map();
  for (const [k, t] of o.tensors) (k.startsWith('m.') ? m : v).set(k.slice(2), t.data);
  return { state, params, opt: { step: Number(o.metadata.step ?? state.globalStep), m, v } };
}

/** Best weights so far (by the validation metric), replaced atomically. */
export function saveBest(dir: string, params: Params): void {
  fs.mkdirSync(dir, { recursive: true });
  writeAtomic(path.join(dir, 'best.safetensors'), serializeSafetensors(toTensors(params)));
}

export function loadBest(dir: string): Params {
  return new Map([...readSafetensors(path.join(dir, 'best.safetensors')).tensors].map(([k, t]) => [k, t.data]));
}

/**
 * Once a run is complete (model exported and logged): keep its final state, drop the resumable
 * checkpoints (weights + optimizer moments are ~3x the model) so the folder does not grow per run.
 */
export function finishCheckpoints(dir: string, state: TrainState): void {
  writeAtomic(path.join(dir, 'final-state.json'), JSON.stringify(state));
  fs.rmSync(path.join(dir, 'latest.json'), { force: true });
  for (const old of fs.readdirSync(dir))
    if (old.startsWith('ckpt-')) fs.rmSync(path.join(dir, old), { recursive: true, force: true });
}

/**
 * Search spaces as data: what notebooks/04_tuning.ipynb authors per model kind and what the Optuna
 * bridge turns into distributions. A space also says how a trial's parameters become a training
 * config, so the tuned run logs the same params `make retrain` reads back.
 */
import { z } from 'zod';

export const ParamSchema = z.discriminatedUnion('type', [
  z.object({
    name: z.string().min(1),
    type: z.literal('float'),
    low: z.number(),
    high: z.number(),
    log: z.boolean().optional(),
    step: z.number().positive().optional(),
  }),
  z.object({
    name: z.string().min(1),
    type: z.literal('int'),
    low: z.number().int(),
    high: z.number().int(),
    log: z.boolean().optional(),
    step: z.number().int().positive().optional(),
  }),
  z.object({
    name: z.string().min(1),
    type: z.literal('categorical'),
    choices: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
  }),
]);
export type SearchParam = z.infer<typeof ParamSchema>;
export type ParamValue = string | number | boolean;
export type TrialParams = Record<string, ParamValue>;

/** Checks a space (names unique, ranges ordered, log ranges positive); returns it typed. */
export function validateSpace(space: readonly unknown[]): SearchParam[] {
  const parsed = z.array(ParamSchema).min(1).parse(space);
  const seen = new Set<string>();
  for (const p of parsed) {
    if (seen.has(p.name)) throw new Error(`search space: parameter ${p.name} appears twice`);
    seen.add(p.name);
    if (p.type !== 'categorical') {
      if (!(p.low <= p.high)) throw new Error(`search space: ${p.name} has low ${p.low} > high ${p.high}`);
      if (p.log && p.low <= 0) throw new Error(`search space: ${p.name} is log-scaled, so low must be > 0`);
      if (p.log && p.step !== undefined) throw new Error(`search space: ${p.name} cannot be both log and stepped`);
    }
  }
  return parsed;
}

/** Reads a trial parameter as a number (a space and its mapping disagreeing is a bug, so it throws). */
export function numberParam(params: TrialParams, name: string): number {
  const v = params[name];
  if (typeof v !== 'number') throw new Error(`trial parameter ${name} is ${JSON.stringify(v)}, expected a number`);
  return v;
}

/**
 * What `make retrain` keeps between runs of a task (<state dir>/<task>.json): the data digest the last
 * challenger trained on, and the run a retrain in progress logs to. Written atomically (a temp file
 * renamed over it), so a kill or a full disk never leaves half a file; a file that is damaged anyway
 * is set aside with a warning, and retrain goes on from the production config's digest.
 */
import fs from 'node:fs';
import { z } from 'zod';
import type { MlflowClient } from '../mlflow';
import { writeFileAtomic } from '../io/files';

const RetrainStateSchema = z.object({
  lastDigest: z.string().nullable().optional(),
  /** Set while a retrain runs; a retrain that finds it set finds a run its predecessor left open. */
  inProgressRunId: z.string().optional(),
});
export type RetrainState = z.infer<typeof RetrainStateSchema>;

export function readRetrainState(file: string, warn: (msg: string) => void): RetrainState {
  if (!fs.existsSync(file)) return {};
  const parsed = RetrainStateSchema.safeParse(
    (() => {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      } catch {
        return undefined;
      }
    })(),
  );
  if (parsed.success) return parsed.data;
  const aside = `${file}.damaged-${Date.now()}`;
  fs.renameSync(file, aside);
  warn(`retrain state ${file} was unreadable; set aside as ${aside}, starting from the production config's digest`);
  return {};
}

export function writeRetrainState(file: string, state: RetrainState): void {
  writeFileAtomic(file, `${JSON.stringify(RetrainStateSchema.parse(state))}\n`);
}

/**
 * The run a previous retrain left behind is never continued: its params were logged from other inputs
 * (another incoming file, another --force), which MLflow refuses to log over. One still RUNNING (the
 * process was killed) is closed KILLED; one that ended (FAILED) is left as it is. A fine-tuned
 * challenger still resumes from its checkpoints, in the new run.
 */
export async function closeLeftoverRun(client: MlflowClient, runId: string, log: (msg: string) => void): Promise<void> {
  const run = await client.getRun(runId).catch(() => undefined);
  if (!run) return log(`previous retrain run ${runId} is gone; starting a new run`);
  if (run.info.status === 'RUNNING') {
    await client.setTags(runId, { 'mlops.closed_by': 'the next retrain (this one stopped without ending)' });
    await client.endRun(runId, 'KILLED');
  }
  const ended = run.info.status === 'RUNNING' ? 'KILLED' : run.info.status;
  log(`previous retrain run ${runId} ended ${ended}; starting a new run`);
}

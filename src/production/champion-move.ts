/**
 * Every move of @champion (make promote ALIAS=champion, a promoting retrain, make rollback) goes through
 * here, so @previous-champion always names the version it replaced and make rollback has somewhere to go.
 * A move is two alias calls; a kill or an outage between them once left both aliases on one version. So
 * the intent is recorded first, as a tag on the registered model, and cleared last: whoever finds an
 * intent (the next move, rollback, or promote of the task) completes it before doing anything else, and
 * completing twice changes nothing.
 */
import { z } from 'zod';
import type { MlflowClient } from '../mlflow';

export const MOVE_TAG = 'mlops.champion_move';

const MoveSchema = z.object({ from: z.string().nullable(), to: z.string(), at: z.string() });
type Move = z.infer<typeof MoveSchema>;

async function apply(client: MlflowClient, name: string, m: Move): Promise<void> {
  if (m.from !== null && m.from !== m.to) await client.setAlias(name, 'previous-champion', m.from);
  await client.setAlias(name, 'champion', m.to);
  await client.deleteRegisteredModelTag(name, MOVE_TAG);
}

/** Completes a move an earlier process recorded but did not finish; returns it, if there was one. */
export async function completeChampionMove(client: MlflowClient, name: string): Promise<Move | undefined> {
  const model = await client.getRegisteredModel(name);
  const raw = model?.tags.find((t) => t.key === MOVE_TAG)?.value;
  if (raw === undefined) return undefined;
  const parsed = MoveSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(`models:/${name} has an unreadable ${MOVE_TAG} tag: ${raw}`);
  await apply(client, name, parsed.data);
  return parsed.data;
}

/**
 * Points @champion at `version`, and @previous-champion at the version it pointed at before (when it
 * pointed elsewhere).
 */
export async function moveChampion(
  client: MlflowClient,
  name: string,
  version: string,
): Promise<{ from: string | null; to: string }> {
  await completeChampionMove(client, name);
  const from = (await client.getModelVersionByAlias(name, 'champion'))?.version ?? null;
  const move: Move = { from, to: version, at: new Date().toISOString() };
  await client.setRegisteredModelTag(name, MOVE_TAG, JSON.stringify(move));
  await apply(client, name, move);
  return { from, to: version };
}

/** make rollback: @champion goes back to @previous-champion, and the two swap, so rollback is undoable. */
export async function rollbackChampion(client: MlflowClient, name: string): Promise<{ from: string; to: string }> {
  await completeChampionMove(client, name);
  const prev = await client.getModelVersionByAlias(name, 'previous-champion');
  if (!prev) throw new Error(`models:/${name}@previous-champion is not set: there is nothing to roll back to`);
  const { from } = await moveChampion(client, name, prev.version);
  return { from: from ?? 'none', to: prev.version };
}

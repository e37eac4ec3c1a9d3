import { execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { MlflowClient } from '../../src/mlflow';
import { executeNotebook } from '../helpers/cli';
import { copyProject } from '../helpers/project-copy';
import { startServeProcess } from '../helpers/serve-process';

// A new model idea travels from a notebook cell to the served model with no file under src/ edited by
// hand, in a copy of the project: a new candidate in 03_experiments' recipe cell -> make promote ->
// the notebook runs headless and logs it -> the run is promoted -> make retrain FORCE=1 trains that
// candidate's recipe from the promoted module -> make serve serves it.
const cfg = loadConfig();
const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'new-candidate-'));
const task = 'support-category';
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
  fs.rmSync(copy, { recursive: true, force: true });
});

describe('a new candidate, from a notebook cell to the served model', () => {
  it('notebook -> promote -> run -> register -> retrain -> serve', async () => {
    copyProject(copy, { files: ['package.json', 'tsconfig.json'], pretrained: true });
    const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri'), VENV: cfg.venv };
    const inCopy = (script: string, args: string[]) =>
      promisify(execFile)(path.join(copy, 'node_modules/.bin/ts-node'), [path.join(copy, 'scripts', script), ...args], {
        cwd: copy,
        env,
        maxBuffer: 16 * 1024 * 1024,
      }).then((r) => r.stdout);

    // 1. The idea, in the notebook: word 1-3 grams.
    const nbFile = path.join(copy, 'notebooks/03_experiments.ipynb');
    const nb = JSON.parse(fs.readFileSync(nbFile, 'utf8'));
    const cell = nb.cells.find((c: { id: string }) => c.id === 'exp-r4');
    const source = (cell.source as string[]).join('');
    cell.source = source.replace(
      "    'tfidf-bigram': { ...DEFAULT_BASELINE, logreg },",
      "    'tfidf-bigram': { ...DEFAULT_BASELINE, logreg },\n    'tfidf-trigram': { ...DEFAULT_BASELINE, tfidf: { ...DEFAULT_BASELINE.tfidf, ngramRange: [1, 3] }, logreg },",
    );
    expect(cell.source).not.toBe(source);
    // ...and a cell that trains it, after the other TF-IDF candidates' cells.
    const after = nb.cells.findIndex((c: { id: string }) => c.id === 'exp-tfidf-unigram');
    expect(after).toBeGreaterThan(0);
    nb.cells.splice(after + 1, 0, {
      cell_type: 'code',
      id: 'exp-tfidf-trigram',
      metadata: {},
      execution_count: null,
      outputs: [],
      source: ["await tfidfCandidate('tfidf-trigram');"],
    });
    fs.writeFileSync(nbFile, JSON.stringify(nb, null, 1));
    expect(await inCopy('promote.ts', ['export'])).toMatch(/wrote +src\/kinds\/tfidf-logreg\/recipe\.ts/);
    expect(fs.readFileSync(path.join(copy, 'src/kinds/tfidf-logreg/recipe.ts'), 'utf8')).toContain("'tfidf-trigram'");

    // 2. The notebook runs headless in the copy (its kernel starts there) and logs the new candidate.
    await executeNotebook(nbFile, path.join(copy, 'out'), {
      ...env,
      CONVO_MLOPS_ROOT: copy,
      NB_SMALL: '1',
      NB_WORK_DIR: path.join(copy, 'trained'),
    });
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(copy, 'j'),
      log: () => {},
    });
    const exp = (await client.getExperimentByName(task))!;
    const [trigram] = await client.searchAllRuns({
      experimentIds: [exp.experiment_id],
      filter: "attributes.run_name = 'tfidf-trigram'",
      orderBy: ['attributes.start_time DESC'],
    });
    expect(trigram!.data.params).toContainEqual({ key: 'ngram_range', value: '1-3' });

    // 3. Promote that run (its exported-code digest matches the copy's notebooks), then retrain it.
    const config = path.join(copy, 'production', `${task}.json`);
    const state = path.join(copy, 'state');
    await inCopy('promote.ts', [
      'register',
      '--run',
      trigram!.info.run_id,
      '--alias',
      'champion',
      '--config',
      config,
      '--state-dir',
      state,
    ]);
    const processed = path.join(copy, 'processed');
    await inCopy('prepare-data.ts', [
      '--task',
      task,
      '--max-per-split',
      '300',
      '--processed-dir',
      processed,
      '--no-mlflow',
    ]);
    const retrained = await inCopy('retrain.ts', [
      'run',
      '--config',
      config,
      '--processed-dir',
      processed,
      '--incoming',
      path.join(copy, 'none'),
      '--state-dir',
      state,
      '--cache-dir',
      path.join(copy, 'cache'),
      '--force',
      '--min-f1',
      '0',
      '--tolerance',
      '1',
    ]);
    expect(retrained).toMatch(/decision: promoted/);
    const champion = (await client.getModelVersionByAlias(task, 'champion'))!;
    const challengerRun = await client.getRun(champion.run_id!);
    // Trained by the promoted module with the new candidate's recipe.
    expect(challengerRun.data.params).toContainEqual({ key: 'ngram_range', value: '1-3' });

    // 4. Served.
    const { url, server } = await startServeProcess(
      ['--task', task, '--cache-dir', path.join(copy, 'cache'), '--log-dir', path.join(copy, 'serving')],
      { ...env, SERVE_TOKENS: 'test-serving-token-0123' },
    );
    children.push(server);
    const version = await request(`${url}/version`, { headers: { authorization: 'Bearer test-serving-token-0123' } });
    expect(((await version.body.json()) as { model: { run_id: string } }).model.run_id).toBe(champion.run_id);
    await client.close();
  });
});

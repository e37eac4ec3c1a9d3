import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { buildLabelMap } from '../../src/data/labels';
import { MlflowClient, withRun } from '../../src/mlflow';
import { chooseRun, PromotionError, registerRun } from '../../src/production/register';
import { completeChampionMove, MOVE_TAG, rollbackChampion } from '../../src/production/champion-move';
import { exportsOf, readNotebooks } from '../../src/export/notebooks';
import { exportNotebooks } from '../../src/export/export';
import { exportsDigest, EXPORTS_DIGEST_TAG } from '../../src/export/provenance';
import { readProductionConfig } from '../../src/production/config';
import { acquireLock, productionLockFile } from '../../src/production/lock';
import { saveBaseline, trainBaseline, DEFAULT_BASELINE } from '../../src/kinds/tfidf-logreg/model';
import { onTeamStack } from '../helpers/team-stack-run';
import { runScript, spawnScript } from '../helpers/cli';

const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'promote-it-'));
const task = `promote-${Date.now()}`;
let client: MlflowClient;
const runs: Record<string, string> = {};

async function trainedRun(name: string, f1: number, opts: { model?: boolean; fail?: boolean } = {}): Promise<string> {
  let id = '';
  await withRun(client, { experiment: task, runName: name, source: 'notebooks/03_experiments.ipynb' }, async (run) => {
    id = run.runId;
    await run.logParams({ model: 'tfidf-logreg', max_length: 64, 'data.digest.train': 'abc123' });
    await run.logMetrics({ val_macro_f1: f1 });
    if (opts.model !== false) {
      const train = [
        { id: '1', text: 'close my account', label: 'churn' },
        { id: '2', text: 'card arrived', label: 'other' },
      ];
      const model = trainBaseline(train, buildLabelMap(['churn', 'other']), [1, 1], {
        ...DEFAULT_BASELINE,
        tfidf: { ...DEFAULT_BASELINE.tfidf, minDf: 1 },
        logreg: { ...DEFAULT_BASELINE.logreg, epochs: 2 },
      });
      const dir = path.join(tmp, name);
      saveBaseline(model, dir);
      await client.logModel(run.runId, dir, {
        artifactPath: 'model',
        flavors: { ts_tfidf_logreg: { model_file: 'model.json' } },
        signature: { inputs: [{ name: 'text', type: 'string' }], outputs: [{ name: 'label', type: 'string' }] },
      });
    }
  });
  return id;
}

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  runs.low = await trainedRun('low', 0.7);
  runs.best = await trainedRun('best-no-model', 0.99, { model: false });
  runs.high = await trainedRun('high', 0.9);
});
afterAll(async () => {
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('promotion from a run to the registry', () => {
  it('METRIC picks the best FINISHED run that has a model, registers it and sets @challenger', async () => {
    const run = await chooseRun(client, { task, metric: 'val_macro_f1' });
    expect(run.info.run_id).toBe(runs.high);
    const { version, config } = await registerRun(client, run, { task, gitCommit: 'deadbeef', metric: 'val_macro_f1' });
    expect((await client.getModelVersionByAlias(task, 'challenger'))?.version).toBe(version.version);
    expect(version.tags).toEqual(
      expect.arrayContaining([
        { key: 'git.commit', value: 'deadbeef' },
        { key: 'source.name', value: 'notebooks/03_experiments.ipynb' },
        { key: 'promoted.by', value: 'val_macro_f1' },
      ]),
    );
    expect(config).toMatchObject({
      task,
      kind: 'tfidf-logreg',
      model: { name: task, version: version.version, alias: 'challenger', runId: runs.high, flavor: 'ts_tfidf_logreg' },
      maxLength: 64,
      dataDigest: 'abc123',
      labelMap: { labels: ['churn', 'other'] },
    });
    expect(version.tags).toEqual(expect.arrayContaining([{ key: 'kind', value: 'tfidf-logreg' }]));
    const { dir } = await client.downloadModel(`models:/${task}@challenger`, path.join(tmp, 'resolved'));
    expect(fs.existsSync(path.join(dir, 'model.json'))).toBe(true);
  });

  it('ALIAS=champion over a champion keeps @previous-champion, so make rollback has a target; an interrupted move converges', async () => {
    const name = `${task}-moves`;
    const v1 = (await registerRun(client, await client.getRun(runs.low!), { task: name, alias: 'champion' })).version;
    const v2 = (await registerRun(client, await client.getRun(runs.high!), { task: name, alias: 'champion' })).version;
    const at = async (alias: string) => (await client.getModelVersionByAlias(name, alias))?.version;
    expect([await at('champion'), await at('previous-champion')]).toEqual([v2.version, v1.version]);
    expect(await rollbackChampion(client, name)).toEqual({ from: v2.version, to: v1.version });
    expect([await at('champion'), await at('previous-champion')]).toEqual([v1.version, v2.version]);

    // A rollback killed between its two alias calls (the client dies on the second setAlias): the next
    // command that moves the champion finds the recorded intent and completes it first.
    let calls = 0;
    const dying = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === 'setAlias')
          return async (...args: Parameters<MlflowClient['setAlias']>) => {
            if (++calls === 2) throw new Error('killed between the two alias calls');
            return target.setAlias(...args);
          };
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    await expect(rollbackChampion(dying, name)).rejects.toThrow(/killed/);
    expect([await at('champion'), await at('previous-champion')]).toEqual([v1.version, v1.version]);
    expect(await completeChampionMove(client, name)).toMatchObject({ from: v1.version, to: v2.version });
    expect([await at('champion'), await at('previous-champion')]).toEqual([v2.version, v1.version]);
    expect((await client.getRegisteredModel(name))!.tags.map((t) => t.key)).not.toContain(MOVE_TAG);
    expect(await completeChampionMove(client, name)).toBeUndefined();
  });

  it('refuses runs that are not FINISHED, have no model, or lack the metric, saying which', async () => {
    await expect(chooseRun(client, { task, runId: runs.best })).rejects.toThrow(/has no model/);
    await expect(chooseRun(client, { task, runId: runs.low, metric: 'test_accuracy' })).rejects.toThrow(
      /has no metric "test_accuracy"/,
    );
    const exp = (await client.getExperimentByName(task))!;
    const running = await client.createRun({ experimentId: exp.experiment_id, runName: 'still-running' });
    await expect(chooseRun(client, { task, runId: running.info.run_id })).rejects.toThrow(
      new PromotionError(`Run ${running.info.run_id} is RUNNING; only FINISHED runs can be promoted.`).message,
    );
    await expect(chooseRun(client, { task, metric: 'nope' })).rejects.toThrow(/No FINISHED run .* "nope"/);
  });

  it("make promote RUN=... registers that run and writes the task's validated production config, under the production lock", async () => {
    const configFile = path.join(tmp, 'production', `${task}.json`);
    const stateDir = path.join(tmp, 'state');
    const promote = () =>
      spawnScript('promote.ts', ['register', '--run', runs.low!, '--config', configFile, '--state-dir', stateDir], {
        ...process.env,
        MLFLOW_TRACKING_URI: inject('mlflowUri'),
      });
    // While a retrain holds the task's lock, promote refuses and registers nothing.
    const held = acquireLock(productionLockFile(stateDir, task), 'retrain');
    let refused = '';
    try {
      const r = await promote();
      expect(r.status).not.toBe(0);
      refused = r.stderr;
    } finally {
      held.release();
    }
    expect(refused).toMatch(/is held \(retrain, pid \d+/);
    expect(fs.existsSync(configFile)).toBe(false);

    const promoted = await promote();
    expect(promoted.status, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(
      new RegExp(`registered run ${runs.low} .* as ${task} version 2; models:/${task}@challenger -> 2`),
    );
    expect(readProductionConfig(configFile)).toMatchObject({
      kind: 'tfidf-logreg',
      model: { version: '2', runId: runs.low },
    });
  });

  it('refuses a model no kind can serve, before registering it', async () => {
    let id = '';
    await withRun(client, { experiment: task, runName: 'foreign' }, async (run) => {
      id = run.runId;
      const dir = path.join(tmp, 'foreign');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'label_map.json'), JSON.stringify(buildLabelMap(['a', 'b'])));
      await client.logModel(run.runId, dir, {
        artifactPath: 'model',
        flavors: { sklearn: { pickled_model: 'model.pkl' } },
        signature: { inputs: [{ name: 'text', type: 'string' }], outputs: [{ name: 'label', type: 'string' }] },
      });
    });
    const before = (await client.searchModelVersions(`name = '${task}'`)).length;
    await expect(registerRun(client, await client.getRun(id), { task })).rejects.toThrow(
      /cannot be served: no model kind serves the flavors sklearn/,
    );
    expect((await client.searchModelVersions(`name = '${task}'`)).length).toBe(before);
  });
});

/** The notebooks and src/ of the project in a temp folder, and `scripts/promote.ts <cmd>` run against it. */
function projectCopy(prefix: string): { copy: string; run: (cmd: string) => Promise<string> } {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.cpSync(path.join(cfg.root, 'notebooks'), path.join(copy, 'notebooks'), { recursive: true });
  fs.cpSync(path.join(cfg.root, 'src'), path.join(copy, 'src'), { recursive: true });
  const run = (cmd: string) => runScript('promote.ts', [cmd], { ...process.env, PROMOTE_ROOT: copy });
  return { copy, run };
}

describe('promote-check on a copy of the project', () => {
  // Notebook export and sync-back never reach MLflow: the local run covers them.
  it.skipIf(onTeamStack)(
    'fails naming the edited cell, and make promote makes it pass; promoting twice changes nothing',
    async () => {
      const { copy, run } = projectCopy('promote-copy-');

      expect(await run('check')).toMatch(/in sync/);
      const nbFile = path.join(copy, 'notebooks/02_cleaning.ipynb');
      const nb = JSON.parse(fs.readFileSync(nbFile, 'utf8'));
      const original = fs.readFileSync(path.join(copy, 'src/data/clean.ts'), 'utf8');
      const text = (source: string | string[]) => (Array.isArray(source) ? source.join('') : source); // nbformat: a string or a list of lines
      const cell = nb.cells.find((c: { source: string | string[] }) => text(c.source).includes('function maskPii'));
      cell.source = text(cell.source).replace("'[CARD]'", "'[CARD-NUMBER]'");
      fs.writeFileSync(nbFile, JSON.stringify(nb, null, 1));
      await expect(run('check')).rejects.toThrow(
        `src/data/clean.ts differs from notebooks/02_cleaning.ipynb cell ${cell.id}`,
      );
      expect(await run('export')).toMatch(/wrote +src\/data\/clean\.ts/);
      expect(await run('check')).toMatch(/in sync/);
      const first = fs.readFileSync(path.join(copy, 'src/data/clean.ts'), 'utf8');
      expect(first).toBe(original.replace("'[CARD]'", "'[CARD-NUMBER]'")); // that one edit, nothing else
      expect(await run('export')).toMatch(/unchanged src\/data\/clean\.ts/);
      expect(fs.readFileSync(path.join(copy, 'src/data/clean.ts'), 'utf8')).toBe(first);
      fs.rmSync(copy, { recursive: true, force: true });
    },
  );

  it.skipIf(onTeamStack)(
    'sync-back: a hand edit of a generated module goes back into its notebook cell; promote then changes nothing',
    async () => {
      const { copy, run } = projectCopy('syncback-copy-');
      expect(await run('update')).toMatch(/no hand edits/);
      const module = path.join(copy, 'src/features/tabular.ts');
      const edited = fs
        .readFileSync(module, 'utf8')
        .replace(
          'export const TASK_DERIVED_FEATURES: Readonly<Record<string, readonly string[]>> = {',
          "export const SENIOR_FLAG = 'SeniorCitizen';\n\nexport const TASK_DERIVED_FEATURES: Readonly<Record<string, readonly string[]>> = {",
        );
      expect(edited).not.toBe(fs.readFileSync(module, 'utf8'));
      fs.writeFileSync(module, edited);
      await expect(run('check')).rejects.toThrow();
      expect(await run('update')).toMatch(
        /updated +notebooks\/05_tabular\.ipynb cell tab-03 +<- src\/features\/tabular\.ts/,
      );
      const nb = JSON.parse(fs.readFileSync(path.join(copy, 'notebooks/05_tabular.ipynb'), 'utf8'));
      const cell = nb.cells.find((c: { id: string }) => c.id === 'tab-03');
      // Back in notebook form: no `export` keyword, imports from the project root, the directive kept.
      expect(cell.source[0]).toBe('//| export\n');
      expect(cell.source).toContain("const SENIOR_FLAG = 'SeniorCitizen';\n");
      expect(cell.source.join('')).toContain("from './src/data/tabular-tasks'");
      expect(await run('check')).toMatch(/in sync/);
      expect(await run('export')).toMatch(/unchanged src\/features\/tabular\.ts/);
      expect(fs.readFileSync(module, 'utf8')).toBe(edited);
      fs.rmSync(copy, { recursive: true, force: true });
    },
  );

  it('refuses a run made with other notebook code than the working tree has, unless forced; tags the version', async () => {
    const run = await client.getRun(runs.low!);
    const now = exportsDigest(exportsOf(cfg.root));
    // Every run records the digest of the exported cells it ran with.
    expect(run.data.tags).toContainEqual({ key: EXPORTS_DIGEST_TAG, value: now.digest });
    // The notebooks as they would be after one exported cell of 02_cleaning changed.
    const edited = readNotebooks(cfg.root).map((nb) =>
      nb.path !== 'notebooks/02_cleaning.ipynb'
        ? nb
        : {
            ...nb,
            notebook: {
              ...nb.notebook,
              cells: nb.notebook.cells.map((c) =>
                c.id === 'clean-02' ? { ...c, source: `${[c.source].flat().join('')}\n// a changed rule\n` } : c,
              ),
            },
          },
    );
    const later = exportsDigest(exportNotebooks(edited));
    expect(later.digest).not.toBe(now.digest);
    await expect(registerRun(client, run, { task, currentExports: later })).rejects.toThrow(
      /made with other notebook code than the working tree has now \(changed since: src\/data\/clean\.ts\).*FORCE=1/,
    );
    const forced = await registerRun(client, run, { task, currentExports: later, force: true });
    expect(forced.version.tags).toContainEqual({ key: 'exports.digest', value: now.digest });
    expect(forced.config.provenance.exportsDigest).toBe(now.digest);
    const same = await registerRun(client, run, { task, currentExports: now });
    expect(same.version.version).not.toBe(forced.version.version);
    // A run that records no digest (made outside withRun) is refused too: nothing to check it against.
    const exp = (await client.getExperimentByName(task))!;
    const bare = await client.createRun({ experimentId: exp.experiment_id, runName: 'bare' });
    await expect(registerRun(client, bare, { task, currentExports: now })).rejects.toThrow(
      /no mlops\.exports\.digest tag/,
    );
  });
});

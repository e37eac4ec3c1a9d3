import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loggedModelFiles } from '../helpers/servable';
import { loadConfig } from '../../src/config';
import { prepareTask } from '../../src/data/prepare';
import { TASKS, type Example } from '../../src/data/tasks';
import { MlflowClient, withRun } from '../../src/mlflow';
import { registerRun } from '../../src/production/register';
import type { ProductionConfig } from '../../src/production/config';
import { ModelCache } from '../../src/production/model-cache';
import { evaluateRegistered, gate, retrain } from '../../src/retrain/retrain';
import { rollbackChampion } from '../../src/production/champion-move';
import { kindById } from '../../src/kinds';
import { trainKind } from '../../src/kinds/training';
import { DEFAULT_BASELINE } from '../../src/kinds/tfidf-logreg/model';
import { runBaseline } from '../../src/kinds/tfidf-logreg/train';
import { fineTuneParams } from '../../src/kinds/bert/train';
import { DEFAULT_FINETUNE } from '../../src/train/recipe';
import { onTeamStack } from '../helpers/team-stack-run';
import { spawnScript } from '../helpers/cli';

const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retrain-it-'));
const spec = TASKS['support-category'];
const task = spec.name;
let client: MlflowClient;
let production: ProductionConfig;
let data: { train: Example[]; validation: Example[]; test: Example[] };
let name = '';
let cache: ModelCache;

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  cache = new ModelCache(client, path.join(tmp, 'cache'));
  const p = prepareTask(spec, cfg.paths.dataRaw, { maxPerSplit: 600 });
  data = { train: p.splits.train, validation: p.splits.validation, test: p.splits.test };
  // A promoted champion, as `make promote` leaves it (model name unique per test run).
  const exp = `retrain-${Date.now()}`;
  const runId = await withRun(client, { experiment: exp, runName: 'baseline' }, async (run) => {
    await runBaseline(
      spec,
      { ...data, labelMap: p.labelMap, trainDigest: p.digests.train },
      { ...DEFAULT_BASELINE, logreg: { ...DEFAULT_BASELINE.logreg, epochs: 10 } },
      run,
      { progress: false },
    );
    return run.runId;
  });
  name = exp;
  const reg = await registerRun(client, await client.getRun(runId), { task: name, alias: 'champion' });
  production = { ...reg.config, task, model: { ...reg.config.model, name } };
});
afterAll(async () => {
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const run = (inputs: Partial<Parameters<typeof retrain>[2]>, opts: Partial<Parameters<typeof retrain>[3]> = {}) =>
  withRun(client, { experiment: name, runName: 'retrain' }, (r) =>
    retrain(
      client,
      r,
      { spec, production, ...data, incoming: [], lastDigest: production.dataDigest, ...inputs },
      { cache, challenger: { pretrained: cfg.paths.pretrained, workDir: path.join(tmp, 'ft') }, ...opts },
    ),
  );

describe('make retrain', () => {
  it('skips training when the data digest has not changed', async () => {
    const o = await run({});
    expect(o.decision).toBe('skipped_no_new_data');
  });

  it('with drifted incoming data it trains; a challenger worse than the champion is registered, not promoted', async () => {
    // Mislabelled copies of the training texts plus off-domain texts: the data drifts and the
    // challenger learns contradictions, so it must not replace the champion.
    const labels = production.labelMap.labels;
    const wrong = (l: string) => labels[(labels.indexOf(l) + 1) % labels.length]!;
    const incoming: Example[] = [
      ...[0, 1, 2].flatMap((k) =>
        data.train.map((e, i) => ({ id: `flip${k}#${i}`, text: e.text, label: wrong(e.label) })),
      ),
      ...Array.from({ length: 600 }, (_, i) => ({
        id: `off#${i}`,
        text: `broadband router ${i % 13} drops the wifi signal every ${i % 7} minutes`,
        label: labels[i % labels.length]!,
      })),
    ];
    const before = (await client.getModelVersionByAlias(name, 'champion'))!.version;
    const o = await run({ incoming }, { gate: { minMacroF1: 0.1, tolerance: 0.005 } });
    expect(o.drift?.action).not.toBe('none');
    expect(o.decision).toBe('registered_not_promoted');
    expect(o.challengerF1!).toBeLessThan(o.championF1! - 0.005);
    expect((await client.getModelVersionByAlias(name, 'champion'))!.version).toBe(before);
    expect((await client.getModelVersionByAlias(name, 'challenger'))!.version).toBe(o.challengerVersion);
    const logged = await client.searchAllRuns({
      experimentIds: [(await client.getExperimentByName(name))!.experiment_id],
      filter: "tags.`retrain.decision` = 'registered_not_promoted'",
    });
    expect(logged).toHaveLength(1);
    expect(logged[0]!.data.tags.find((t) => t.key === 'retrain.reason')?.value).toMatch(/worse than the champion/);
  });

  it('a passing challenger becomes champion, and make rollback restores the previous one', async () => {
    const incoming: Example[] = data.validation.map((e, i) => ({
      ...e,
      id: `more#${i}`,
      text: `${e.text} please help`,
    }));
    const champion = (await client.getModelVersionByAlias(name, 'champion'))!;
    const before = champion.version;
    // A stale cache entry under the champion's key: the rejected (mislabelled) challenger's files. The
    // gate must notice it is not the champion's run and score the registry's champion instead.
    const rejected = (await client.getModelVersionByAlias(name, 'challenger'))!;
    expect(rejected.run_id).not.toBe(champion.run_id);
    const staleDir = cache.dirFor(champion);
    fs.rmSync(staleDir, { recursive: true, force: true });
    fs.cpSync(await cache.fetch(rejected), staleDir, { recursive: true });
    const trueChampionF1 = (
      await evaluateRegistered(
        new ModelCache(client, path.join(tmp, 'fresh-cache')),
        await client.getModelVersion(name, before),
        data.test,
        production.labelMap,
      )
    ).macro.f1;
    const staleF1 = (
      await evaluateRegistered(
        new ModelCache(client, path.join(tmp, 'fresh-cache')),
        rejected,
        data.test,
        production.labelMap,
      )
    ).macro.f1;
    expect(Math.abs(trueChampionF1 - staleF1)).toBeGreaterThan(0.05);

    const o = await run({ incoming }, { force: true, gate: { minMacroF1: 0.3, tolerance: 0.05 } });
    expect(o.championF1).toBeCloseTo(trueChampionF1, 10);
    expect(o.decision).toBe('promoted');
    expect((await client.getModelVersionByAlias(name, 'champion'))!.version).toBe(o.challengerVersion);
    expect((await client.getModelVersionByAlias(name, 'previous-champion'))!.version).toBe(before);
    expect(await rollbackChampion(client, name)).toEqual({ from: o.challengerVersion, to: before });
    expect((await client.getModelVersionByAlias(name, 'champion'))!.version).toBe(before);
  });

  it('gate rules', () => {
    expect(gate(0.5, undefined, { minMacroF1: 0.6, tolerance: 0 }).promote).toBe(false);
    expect(gate(0.8, 0.81, { minMacroF1: 0.6, tolerance: 0.02 }).promote).toBe(true);
    expect(gate(0.8, 0.9, { minMacroF1: 0.6, tolerance: 0.02 }).promote).toBe(false);
  });

  /** Runs `make retrain`'s script, expecting it to fail; returns its stderr. */
  const retrainCliError = async (args: string[]): Promise<string> => {
    const r = await spawnScript('retrain.ts', ['run', ...args], {
      ...process.env,
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
    });
    expect(r.status).toBe(1);
    return r.stderr;
  };

  it('the CLI refuses to run without a promoted production config', async () => {
    const err = await retrainCliError(['--config', path.join(tmp, 'missing.json')]);
    expect(err).toMatch(/missing\.json does not exist\. Promote a run first/);
  });

  it('the CLI refuses an invalid production config, naming the field', async () => {
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(
      bad,
      JSON.stringify({ ...production, kind: 'xgboost', model: { ...production.model, runId: 'nope' } }),
    );
    const err = await retrainCliError(['--task', task, '--config', bad, '--state-dir', path.join(tmp, 'state')]);
    expect(err).toMatch(/bad\.json is not a valid production config/);
    expect(err).toMatch(/kind: /);
    expect(err).toMatch(/model\.runId: .*run id/);
  });
});

describe('retrain challengers are of the promoted kind', () => {
  it.skipIf(onTeamStack)(
    'a promoted BERT fine-tune is retrained as a BERT fine-tune with its logged hyper-parameters',
    async () => {
      const hyper = Object.fromEntries(
        Object.entries(
          fineTuneParams(task, 'all-MiniLM-L6-v2', {
            ...DEFAULT_FINETUNE,
            epochs: 1,
            batchSize: 8,
            maxLength: 32,
            learningRate: 2e-4,
            checkpointEverySteps: 0,
          }),
        ).map(([k, v]) => [k, String(v)]),
      );
      const small = {
        train: data.train.slice(0, 40),
        validation: data.validation.slice(0, 40),
        test: data.test.slice(0, 40),
        labelMap: production.labelMap,
      };
      const runId = await withRun(client, { experiment: name, runName: 'retrain-bert' }, async (r) => {
        const out = await trainKind(hyper.model!, {
          input: 'text',
          spec,
          data: small,
          hyper,
          run: r,
          paths: { pretrained: cfg.paths.pretrained, workDir: path.join(tmp, 'ft-bert') },
        });
        expect(out.test.n).toBe(40);
        return r.runId;
      });
      const logged = await client.getRun(runId);
      const params = Object.fromEntries(logged.data.params.map((p) => [p.key, p.value]));
      expect(params).toMatchObject({
        model: 'bert-finetune',
        epochs: '1',
        batch_size: '8',
        max_length: '32',
        learning_rate: '0.0002',
      });
      expect(await loggedModelFiles(client, runId)).toContain('model.onnx');
      expect((await client.getMetricHistory(runId, 'train_loss')).length).toBe(5);
    },
  );

  it('refuses a model kind it does not know instead of training another kind', async () => {
    const unknown = { ...production, kind: 'xgboost' as never };
    await expect(
      withRun(client, { experiment: name, runName: 'retrain-unknown' }, (r) =>
        retrain(
          client,
          r,
          { spec, production: unknown, ...data, incoming: [], lastDigest: null },
          { force: true, cache, challenger: { pretrained: cfg.paths.pretrained, workDir: path.join(tmp, 'ft-x') } },
        ),
      ),
    ).rejects.toThrow(/unknown model kind "xgboost"/);
    expect(() => kindById('xgboost')).toThrow(
      /unknown model kind "xgboost" \(known: tfidf-logreg, frozen-encoder-logreg, bert-finetune, tabular-onnx, hybrid-frozen-logreg\)/,
    );
  });
});

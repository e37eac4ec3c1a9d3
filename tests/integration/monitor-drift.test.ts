import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { cleanText } from '../../src/data/clean';
import { classWeights, encodeLabels } from '../../src/data/labels';
import { ingestFile } from '../../src/data/ingest';
import { prepareTask } from '../../src/data/prepare';
import { TASKS, type AnyTaskSpec } from '../../src/data/tasks';
import { loadTfidfPredictor, saveBaseline, trainBaseline, DEFAULT_BASELINE } from '../../src/kinds/tfidf-logreg/model';
import { sampleServed, servedDrift } from '../../src/monitor/served';
import { buildApp } from '../../src/serve/app';

// Training texts are cleaned; the serving log keeps what clients sent (PII-masked). Monitoring must
// compare the two after the same cleaning: served training texts, unchanged, are no drift.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'monitor-drift-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('drift compares like with like', () => {
  it('an unchanged stream of served training texts, sent raw to the server, reports no drift', async () => {
    const spec: AnyTaskSpec = TASKS['conversation-churn'];
    const prepared = prepareTask(spec, cfg.paths.dataRaw, { maxPerSplit: 400 });
    const train = prepared.splits.train;
    // The raw transcripts of the training rows, as a client would send them.
    const raw = new Map<string, string>();
    for (const file of spec.files) {
      const res = ingestFile(path.join(cfg.paths.dataRaw, file.path), {
        schema: spec.schema,
        maxBadShare: spec.maxBadShare,
        textFields: spec.textFields,
        maxTextChars: spec.maxTextChars,
      });
      res.rows.forEach((row, i) => {
        const id = `${file.path}#${res.rowNumbers[i]}`;
        raw.set(id, spec.toExample(row, id).text);
      });
    }
    const rawTrain = train.map((e) => raw.get(e.id)!);
    expect(rawTrain.filter((t, i) => t !== train[i]!.text).length).toBeGreaterThan(train.length / 2); // cleaning changes most of them

    const modelDir = path.join(tmp, 'model');
    const weights = classWeights(
      encodeLabels(
        train.map((e) => e.label),
        prepared.labelMap,
      ),
      prepared.labelMap.labels.length,
    );
    saveBaseline(trainBaseline(train, prepared.labelMap, weights, DEFAULT_BASELINE), modelDir);
    const predictor = await loadTfidfPredictor(modelDir);
    const served = {
      name: spec.name,
      alias: 'champion',
      version: '1',
      runId: 'r'.repeat(32),
      predictor,
      loadedAt: new Date().toISOString(),
    };
    const models = {
      name: spec.name,
      alias: 'champion',
      loaded: true,
      reloads: 0,
      releases: 0,
      draining: 0,
      model: served,
      use: <T>(fn: (m: typeof served) => Promise<T>) => fn(served),
    };
    const logDir = path.join(tmp, 'serving');
    const cleaning = spec.cleaning!;
    const app = await buildApp({
      models,
      tokens: ['t'],
      positiveLabel: spec.positiveLabel,
      preprocess: (t) => cleanText(t, cleaning),
      servingLogDir: logDir,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
      for (let i = 0; i < rawTrain.length; i += 50) {
        const r = await request(`${url}/predict`, {
          method: 'POST',
          headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
          body: JSON.stringify({ texts: rawTrain.slice(i, i + 50) }),
        });
        expect(r.statusCode).toBe(200);
        await r.body.dump();
      }
    } finally {
      await app.close();
    }

    const log = await sampleServed(logDir, { model: spec.name });
    expect(log.total).toBe(train.length);
    const drift = servedDrift(train, log.records, cleaning);
    expect(drift.level, drift.reason).toBe('none');
    expect(drift.action).toBe('none');
    // Compared as logged, without the training cleaning, the same stream looks drifted: the check can tell.
    const naive = servedDrift(train, log.records, null);
    expect(naive.level).not.toBe('none');
  });
});

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
import { fitAndSaveScope } from '../../src/kinds/scope/fit';
import { readScope, withScope } from '../../src/kinds/scope/rule';
import type { Predictor } from '../../src/kinds';
import { monitorHtml } from '../../src/monitor/monitor-report';
import { sampleServed, servedDrift } from '../../src/monitor/served';
import { servingLogFile } from '../../src/monitor/serving-log';
import { buildApp } from '../../src/serve/app';
import { fixedModelSource } from '../helpers/model-source';

// Training texts are cleaned; the serving log keeps what clients sent (PII-masked). Monitoring must
// compare the two after the same cleaning: served training texts, unchanged, are no drift.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'monitor-drift-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Serves `predictor` as `spec`'s champion with a serving log in `logDir`, and posts `texts` to /predict. */
async function serveAndSend(
  spec: AnyTaskSpec,
  predictor: Predictor,
  logDir: string,
  texts: readonly string[],
  preprocess?: (t: string) => string,
): Promise<void> {
  const app = await buildApp({
    models: fixedModelSource(spec.name, predictor),
    tokens: ['test-serving-token-0123'],
    positiveLabel: spec.positiveLabel,
    ...(preprocess ? { preprocess } : {}),
    servingLogDir: logDir,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    for (let i = 0; i < texts.length; i += 50) {
      const r = await request(`${url}/predict`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-serving-token-0123', 'content-type': 'application/json' },
        body: JSON.stringify({ texts: texts.slice(i, i + 50) }),
      });
      expect(r.statusCode).toBe(200);
      await r.body.dump();
    }
  } finally {
    await app.close();
  }
}

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
    const logDir = path.join(tmp, 'serving');
    const cleaning = spec.cleaning!;
    await serveAndSend(spec, predictor, logDir, rawTrain, (t) => cleanText(t, cleaning));

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

describe('the out-of-scope share is a monitored signal', () => {
  it('off-topic traffic on the latest day raises the share over the days before: drift, retrain, shown as a trend', async () => {
    const spec = TASKS['support-intent'];
    const p = prepareTask(spec, cfg.paths.dataRaw, { maxPerSplit: 1500 });
    const data = { train: p.splits.train, validation: p.splits.validation, test: p.splits.test, labelMap: p.labelMap };
    const modelDir = path.join(tmp, 'intent-model');
    const weights = classWeights(
      encodeLabels(
        data.train.map((e) => e.label),
        p.labelMap,
      ),
      p.labelMap.labels.length,
    );
    saveBaseline(trainBaseline(data.train, p.labelMap, weights, DEFAULT_BASELINE), modelDir);
    const scope = await fitAndSaveScope(modelDir, { kind: 'tfidf-logreg', load: loadTfidfPredictor }, data);
    expect(scope.score).toBe('msp');
    const predictor = withScope(await loadTfidfPredictor(modelDir), readScope(modelDir)!);
    const offTopic = fs
      .readFileSync(path.join(cfg.root, 'data', 'eval', 'off-topic.txt'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    const inScope = data.test.map((e) => e.text);

    // Three earlier days of in-scope traffic: served for real, then dated back (the server logs today).
    const logDir = path.join(tmp, 'intent-serving');
    await serveAndSend(spec, predictor, logDir, inScope.slice(0, 450));
    const today = servingLogFile(logDir, new Date());
    const earlier = fs.readFileSync(today, 'utf8').trim().split('\n');
    fs.rmSync(today);
    const dayOf = (back: number) => new Date(Date.now() - back * 86_400_000);
    earlier.forEach((line, i) => {
      const day = dayOf(3 - (i % 3));
      const rec = { ...JSON.parse(line), ts: day.toISOString() };
      fs.appendFileSync(servingLogFile(logDir, day), `${JSON.stringify(rec)}\n`);
    });
    // Today: 95 in-scope queries and the 189 off-topic ones (TF-IDF's MSP rejects only about a quarter of those).
    await serveAndSend(spec, predictor, logDir, [...inScope.slice(450, 545), ...offTopic]);

    const log = await sampleServed(logDir, { model: spec.name });
    expect(log.scopeDays.map((d) => d.rows)).toEqual([150, 150, 150, 95 + offTopic.length]);
    const drift = servedDrift(data.train, log.records, spec.cleaning, undefined, log.scopeDays);
    const oos = drift.features.find((f) => f.feature === 'out_of_scope_share')!;
    process.stdout.write(
      `[monitor] out-of-scope share: ${log.scopeDays.map((d) => `${d.day} ${((100 * d.outOfScope) / d.rows).toFixed(1)}%`).join(', ')}; level ${drift.level}\n`,
    );
    // The earlier days sit near the 3-5% the threshold keeps out; two thirds of today's traffic is off-topic.
    expect(oos.share!.baseline).toBeLessThan(0.12);
    expect(oos.share!.latest - oos.share!.baseline).toBeGreaterThan(0.1);
    expect(oos.drifted).toBe(true);
    expect(['moderate', 'large']).toContain(drift.level);
    expect(drift.action).not.toBe('none');
    expect(drift.reason).toMatch(/out_of_scope_share/);
    // The predicted-label comparison uses the model's classes, never the fallback label.
    expect(log.records.some((r) => r.label === 'out_of_scope' && r.top_label !== 'out_of_scope')).toBe(true);
    const html = monitorHtml(spec.name, drift, { texts: [], labels: [] }, log.records, log.scopeDays);
    expect(html).toContain('Out-of-scope share per day');

    // The same earlier days and a latest day 8 points up: a rise below the policy's 10 is no drift.
    const calm = servedDrift(data.train, log.records, spec.cleaning, undefined, [
      ...log.scopeDays.slice(0, 3),
      { day: log.scopeDays[3]!.day, rows: 150, outOfScope: Math.round(150 * (oos.share!.baseline + 0.08)) },
    ]);
    expect(calm.features.find((f) => f.feature === 'out_of_scope_share')!.drifted).toBe(false);
  });
});

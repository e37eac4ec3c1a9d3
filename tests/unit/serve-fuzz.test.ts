import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLabelMap } from '../../src/data/labels';
import type { Predictor } from '../../src/kinds';
import { DEFAULT_BASELINE, loadTfidfPredictor, saveBaseline, trainBaseline } from '../../src/kinds/tfidf-logreg/model';
import { buildApp } from '../../src/serve/app';
import { fixedModelSource } from '../helpers/model-source';

// Property tests of the scoring routes with a real (tiny) TF-IDF model, in process: whatever the body, the
// answer is a 2xx, or a 4xx that says what is wrong (naming the offending path where there is one), never a
// 5xx, a crash or a hang. FUZZ_RUNS (make fuzz) runs longer; FUZZ_SEED replays a failure.
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const TOKEN = 'fuzz-serving-token-0123';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-fuzz-'));
let app: FastifyInstance;
let predictor: Predictor;

beforeAll(async () => {
  const rows = ['cancel my plan now', 'I will leave for a competitor', 'thanks it works', 'my router is fine'].map(
    (text, i) => ({ id: String(i), text, label: i < 2 ? 'yes' : 'no' }),
  );
  const model = trainBaseline(rows, buildLabelMap(['no', 'yes']), [1, 1], {
    ...DEFAULT_BASELINE,
    tfidf: { ...DEFAULT_BASELINE.tfidf, minDf: 1 },
    logreg: { ...DEFAULT_BASELINE.logreg, epochs: 3 },
  });
  saveBaseline(model, path.join(tmp, 'model'));
  predictor = await loadTfidfPredictor(path.join(tmp, 'model'));
  app = await buildApp({
    models: fixedModelSource('fuzz', predictor),
    tokens: [TOKEN],
    positiveLabel: 'yes',
  });
});
afterAll(async () => {
  await app?.close();
  await predictor?.release();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const post = (url: string, payload: string) =>
  app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    payload,
  });

/** Text as clients send it: any code points, combining marks, right-to-left runs, NUL, lone surrogates. */
const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme-composite', maxLength: 30 }),
  fc.constantFrom('\u0000', 'e\u0301\u0301\u0301', '\u202Eevil\u202C', '\uD800', '\uDFFF x', ' \t\n ', ''),
);
const deep = fc.integer({ min: 1, max: 2000 }).map((n) => '['.repeat(n) + ']'.repeat(n));
const bodies = fc.oneof(
  fc.json({ maxDepth: 6 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ texts: v })),
  fc.array(hostileText, { maxLength: 8 }).map((texts) => JSON.stringify({ texts })),
  fc
    .array(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })), { maxLength: 4 })
    .map((r) => JSON.stringify({ dataframe_records: r })),
  fc
    .record({ columns: fc.array(fc.string(), { maxLength: 3 }), data: fc.jsonValue({ maxDepth: 3 }) })
    .map((s) => JSON.stringify({ dataframe_split: s })),
  fc.oneof(fc.double(), fc.bigInt()).map((n) => `{"texts": [${String(n)}]}`),
  deep,
  fc.string({ maxLength: 40 }), // not JSON at all
);

/** What the route must answer for one body: a 2xx, or a 4xx that explains itself. */
function checkAnswer(status: number, body: string): void {
  expect(status === 200 || (status >= 400 && status < 500), `status ${status}: ${body.slice(0, 200)}`).toBe(true);
  if (status === 200) return;
  const parsed = JSON.parse(body) as { message?: unknown; issues?: { path: unknown; message: unknown }[] };
  expect(typeof parsed.message).toBe('string');
  for (const i of parsed.issues ?? []) expect(typeof i.path === 'string' && i.path.length > 0).toBe(true);
}

describe.each(['/predict', '/invocations'])('%s under random bodies', (route) => {
  it(`answers ${RUNS} random bodies with a 2xx or an explained 4xx, never a 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(bodies, async (payload) => {
        const res = await post(route, payload);
        checkAnswer(res.statusCode, res.body);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('scores every text of a valid batch, whatever its characters, or names the one it refuses', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileText, { minLength: 1, maxLength: 6 }), async (texts) => {
        const body = route === '/predict' ? { texts } : { inputs: texts };
        const res = await post(route, JSON.stringify(body));
        checkAnswer(res.statusCode, res.body);
        const parsed = JSON.parse(res.body) as { predictions?: unknown[]; issues?: { path: string }[] };
        if (res.statusCode === 200) expect(parsed.predictions).toHaveLength(texts.length);
        else expect(parsed.issues?.[0]?.path ?? '').toMatch(/^(texts|inputs)(\.\d+)?/);
      }),
      { numRuns: Math.ceil(RUNS / 4), seed: SEED },
    );
  });
});

/**
 * Scoring: POST /predict (texts or records, with churn action buckets) and POST /invocations (MLflow's
 * scoring protocol). Requests are admitted up to a queue limit, micro-batched per served model, and
 * every prediction is appended (text hashed and PII-masked) to the serving log that monitoring reads.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { maskPii } from '../data/clean';
import type { FeatureRecord } from '../data/tabular-tasks';
import { argmaxRows } from '../estimators/logreg';
import { churnBucket, type BucketThresholds } from '../kinds/churn-bucket';
import { ServingLogWriter, type ServingRecord } from '../monitor/serving-log';
import { MicroBatcher, type BatcherOptions } from './batcher';
import type { ModelSource, ServedModel } from './champion';
import { errorResponses, ServeError } from './errors';
import {
  inputsFor,
  InvocationsSchema,
  PredictRecordsSchema,
  PredictSchema,
  type InputLimits,
  type ScoreInputs,
  type ScoringRoute,
} from './inputs';
import { metricsOf } from './metrics';

export interface ScoringOptions extends InputLimits {
  /** Positive label of a churn task: enables A/B/C buckets. */
  positiveLabel?: string;
  buckets: BucketThresholds;
  batching: BatcherOptions;
  /** Applied to each text before scoring: the task's cleaning, so serving sees what training saw. */
  preprocess?: (text: string) => string;
  /** Folder of daily JSONL files every prediction is appended to (predictions-YYYY-MM-DD.jsonl). */
  servingLogDir?: string;
  /** Days of serving-log files kept (older day files are deleted as a new day starts); undefined keeps all. */
  servingLogRetentionDays?: number;
  /** Scoring requests admitted at once (running or waiting for the model); more get 503 + Retry-After. */
  maxQueue: number;
}

// ---- OpenAPI: what the scoring routes answer, with examples ----

const PredictResponse = z.object({
  model: z.object({ name: z.string(), version: z.string() }),
  predictions: z.array(
    z.object({
      id: z.string().optional().describe("tabular models: the record's id column, when sent"),
      label: z
        .string()
        .describe('the top label when in scope, else the fallback label (default out_of_scope: route to a human)'),
      top_label: z.string().describe("the model's most probable class, also when the input is out of scope"),
      confidence: z.number().describe('calibrated probability of top_label (temperature scaling fitted on validation)'),
      in_scope: z
        .boolean()
        .describe(
          "false when the model's out-of-scope score is below its threshold (saved with the model, or the " +
            "deployment's SCOPE_THRESHOLD)",
        ),
      probabilities: z.record(z.string(), z.number()).describe('calibrated class probabilities'),
      bucket: z.enum(['A', 'B', 'C']).optional(),
    }),
  ),
});
const predictExample = { texts: ['my card was declined at the shop', 'how do I close my account?'] };
const recordsExample = {
  records: [{ customerID: '7590-VHVEG', tenure: 1, Contract: 'Month-to-month', MonthlyCharges: 29.85, '...': '...' }],
};
const predictAnswer = {
  model: { name: 'support-category', version: '3' },
  predictions: [
    {
      label: 'card',
      top_label: 'card',
      confidence: 0.93,
      in_scope: true,
      probabilities: { card: 0.93, account: 0.04, payments: 0.03 },
    },
    {
      label: 'out_of_scope',
      top_label: 'account',
      confidence: 0.41,
      in_scope: false,
      probabilities: { card: 0.27, account: 0.41, payments: 0.32 },
    },
  ],
};

/** POST /predict and /invocations (behind auth: register them in the protected context). */
export const scoringRoutes: FastifyPluginAsync<ScoringOptions> = async (app, o) => {
  const models = app.getDecorator<ModelSource>('models');
  const metrics = metricsOf(app);

  // One batcher per served model, so a batch never mixes requests that started on different versions.
  const batchers = new WeakMap<ServedModel, MicroBatcher<string | FeatureRecord>>();
  const batcherFor = (model: ServedModel): MicroBatcher<string | FeatureRecord> => {
    let b = batchers.get(model);
    if (!b) {
      const p = model.predictor;
      b = new MicroBatcher<string | FeatureRecord>(async (items) => {
        metrics.observeBatch(items.length);
        // A model's batcher only ever receives its own input kind (see inputsFor).
        if (p.input === 'text' && p.scope) {
          const v = await p.scope.judge(items as readonly string[]);
          return { probs: v.probs, width: p.labels.length, scopeScores: v.scores };
        }
        const probs =
          p.input === 'text'
            ? await p.predictProba(items as readonly string[])
            : await p.predictProba(items as readonly FeatureRecord[]);
        return { probs, width: p.labels.length };
      }, o.batching);
      batchers.set(model, b);
    }
    return b;
  };

  const servingLog = o.servingLogDir
    ? new ServingLogWriter(
        o.servingLogDir,
        (err) => {
          metrics.countServingLogError();
          app.log.error(`serving log write failed: ${err.message}`);
        },
        'predictions',
        o.servingLogRetentionDays,
      )
    : undefined;
  // Tabular rows that could not be scored, beside the predictions: monitoring reads their missing columns.
  const rejectedLog = o.servingLogDir
    ? new ServingLogWriter(
        o.servingLogDir,
        (err) => {
          metrics.countServingLogError();
          app.log.error(`rejected-rows log write failed: ${err.message}`);
        },
        'rejected',
        o.servingLogRetentionDays,
      )
    : undefined;
  app.addHook('onClose', async () => {
    await servingLog?.close();
    await rejectedLog?.close();
  });

  let admitted = 0;
  async function score(body: unknown, route: ScoringRoute) {
    if (!models.loaded) throw new ServeError('MLOPS_ERR_NO_MODEL', 'No model loaded yet');
    if (admitted >= o.maxQueue) {
      metrics.countRejected();
      throw new ServeError(
        'MLOPS_ERR_BUSY',
        `Server busy: ${admitted} requests in progress (limit ${o.maxQueue}); retry shortly`,
      );
    }
    admitted++;
    metrics.setQueueDepth(admitted);
    try {
      // The request runs on the model current now, which stays loaded until it is done, even across a swap.
      // Parsed against that model's inputs, so a request never mixes a text body with a tabular model.
      return await models.use((model) => {
        const ts = new Date().toISOString();
        const inputs = inputsFor(model, body, route, o, (issues) =>
          rejectedLog?.write([{ ts, route, model: model.name, version: model.version, issues }]),
        );
        return scoreOn(model, inputs, route);
      });
    } finally {
      admitted--;
      metrics.setQueueDepth(admitted);
    }
  }

  async function scoreOn(model: ServedModel, inputs: ScoreInputs, route: string) {
    const t0 = performance.now();
    const texts = inputs.kind === 'text' ? inputs.texts : [];
    const rows = await batcherFor(model).submit(
      inputs.kind === 'record' ? inputs.records : o.preprocess ? texts.map(o.preprocess) : texts,
    );
    const ms = performance.now() - t0;
    const labels = model.predictor.labels;
    const scope = model.predictor.input === 'text' ? model.predictor.scope : undefined;
    const pos = o.positiveLabel !== undefined ? labels.indexOf(o.positiveLabel) : -1;
    const out = rows.map(({ probs: row, scopeScore }, i) => {
      const best = argmaxRows(row, row.length)[0]!;
      const probabilities = Object.fromEntries(labels.map((l, c) => [l, Number(row[c]!.toFixed(6))]));
      const id = inputs.kind === 'record' ? inputs.ids[i] : undefined;
      // A model without an out-of-scope rule (tabular, or saved before scope.json) keeps every input in scope.
      const inScope = scope === undefined || scopeScore === undefined || scopeScore >= scope.threshold;
      return {
        ...(id !== undefined ? { id } : {}),
        label: inScope ? labels[best]! : scope!.fallbackLabel,
        top_label: labels[best]!,
        confidence: Number(row[best]!.toFixed(6)),
        in_scope: inScope,
        probabilities,
        ...(pos >= 0 ? { bucket: churnBucket(row[pos]!, o.buckets) } : {}),
      };
    });
    metrics.countPredictions(model, out);
    if (servingLog) {
      const ts = new Date().toISOString();
      // in_scope is logged only where a rule judged it, so monitoring's out-of-scope share never counts
      // models (churn, tabular, older ones) that keep every input in scope by construction.
      const judged = scope !== undefined && scope.score !== 'none';
      const records: (ServingRecord & { text_chars?: number })[] = out.map(({ in_scope, ...p }, i) => ({
        ts,
        route,
        model: model.name,
        version: model.version,
        ...(inputs.kind === 'text'
          ? {
              text_sha256: createHash('sha256').update(texts[i]!).digest('hex'),
              text: maskPii(texts[i]!),
              text_chars: texts[i]!.length,
            }
          : { features: { ...inputs.records[i]! }, ...(p.id !== undefined ? { record_id: p.id } : {}) }),
        ...p,
        ...(judged ? { in_scope } : {}),
        latency_ms: Number(ms.toFixed(2)),
      }));
      servingLog.write(records);
    }
    return { model, out };
  }

  app.post(
    '/predict',
    {
      schema: {
        tags: ['scoring'],
        summary: 'Classify texts or records',
        description:
          "Label and class probabilities per text (cleaned with the task's rules first), or per record for a " +
          'tabular model (its feature columns, checked against the model signature; a wrong or missing column is a ' +
          '400 that names it). Churn tasks also get an action bucket (A: p >= 0.7, call them; B: p >= 0.4, offer ' +
          'a discount; C: retained). Every prediction carries `confidence` (calibrated probability of its top ' +
          'label) and `in_scope`: a text the model judges to belong to none of its classes gets the fallback label ' +
          '(default `out_of_scope`, route it to a human) and keeps its `top_label`. At most 256 texts or records.',
        body: {
          ...z.toJSONSchema(z.union([PredictSchema, PredictRecordsSchema])),
          examples: [predictExample, recordsExample],
        },
        response: { 200: { ...z.toJSONSchema(PredictResponse), examples: [predictAnswer] }, ...errorResponses },
      },
    },
    async (req: FastifyRequest) => {
      const { model, out } = await score(req.body, '/predict');
      return { model: { name: model.name, version: model.version }, predictions: out };
    },
  );
  app.post(
    '/invocations',
    {
      schema: {
        tags: ['scoring'],
        summary: "MLflow's scoring protocol",
        description:
          'The request formats of `mlflow models serve`: dataframe_split, dataframe_records, instances or inputs. ' +
          'Text models: one text per row (a string, or an object with a "text" field). Tabular models: one record ' +
          'per row with the feature columns of the model signature. Answers {"predictions": [...]}, each with the ' +
          'same fields as /predict: label (the fallback label when out of scope), top_label, confidence, in_scope.',
        body: {
          ...z.toJSONSchema(InvocationsSchema),
          examples: [
            { dataframe_split: { columns: ['text'], data: [['my card was declined']] } },
            { inputs: ['hello'] },
            { dataframe_records: [{ tenure: 1, Contract: 'Month-to-month', MonthlyCharges: 29.85, '...': '...' }] },
          ],
        },
        response: {
          200: z.toJSONSchema(z.object({ predictions: PredictResponse.shape.predictions })),
          ...errorResponses,
        },
      },
    },
    async (req: FastifyRequest) => {
      const { out } = await score(req.body, '/invocations');
      return { predictions: out };
    },
  );
};

/**
 * Micro-batching: concurrent requests are queued for at most `maxWaitMs` (or until `maxBatch`
 * texts are waiting) and scored in one call, which is how a model server keeps throughput up
 * under many small requests.
 */
export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
}

/** One input's answer: its probability row and, for a model with an out-of-scope rule, its in-scope score. */
export interface ScoredRow {
  probs: Float32Array;
  scopeScore?: number;
}

/** A batch's answers: probabilities row-major [inputs, width], and in-scope scores when the model has them. */
export interface BatchScores {
  probs: Float32Array;
  width: number;
  scopeScores?: Float64Array;
}

interface Pending<I> {
  texts: readonly I[];
  resolve: (rows: ScoredRow[]) => void;
  reject: (err: unknown) => void;
}

/** Batches inputs of type I: texts for text models, feature records for tabular ones. */
export class MicroBatcher<I = string> {
  private queue: Pending<I>[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = Promise.resolve();
  batches = 0;

  constructor(
    private readonly score: (texts: readonly I[]) => Promise<BatchScores>,
    private readonly opts: BatcherOptions,
  ) {}

  /** Resolves with one scored row per text. */
  submit(texts: readonly I[]): Promise<ScoredRow[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ texts, resolve, reject });
      this.queued += texts.length;
      if (this.queued >= this.opts.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.opts.maxWaitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    this.queued = 0;
    if (batch.length === 0) return;
    // One scoring call at a time, in arrival order.
    this.running = this.running.then(async () => {
      this.batches++;
      try {
        const { probs, width, scopeScores } = await this.score(batch.flatMap((p) => p.texts));
        let row = 0;
        for (const p of batch) {
          p.resolve(
            p.texts.map(() => {
              const r = row++;
              return {
                probs: probs.subarray(width * r, width * (r + 1)),
                ...(scopeScores ? { scopeScore: scopeScores[r]! } : {}),
              };
            }),
          );
        }
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    });
  }
}

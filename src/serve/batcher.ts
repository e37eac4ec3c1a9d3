/**
 * Micro-batching: concurrent requests are queued for at most `maxWaitMs` (or until `maxBatch`
 * texts are waiting) and scored in one call, which is how a model server keeps throughput up
 * under many small requests.
 */
export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
}

interface Pending {
  texts: readonly string[];
  resolve: (rows: Float32Array[]) => void;
  reject: (err: unknown) => void;
}

export class MicroBatcher {
  private queue: Pending[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = Promise.resolve();
  batches = 0;

  constructor(
    private readonly score: (texts: readonly string[]) => Promise<{ probs: Float32Array; width: number }>,
    private readonly opts: BatcherOptions,
  ) {}

  /** Resolves with one probability row per text. */
  submit(texts: readonly string[]): Promise<Float32Array[]> {
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
        const { probs, width } = await this.score(batch.flatMap((p) => p.texts));
        let row = 0;
        for (const p of batch) {
          p.resolve(p.texts.map(() => probs.subarray(width * row, width * ++row)));
        }
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    });
  }
}

/**
 * WordPiece tokenization with the checkpoint's own tokenizer.json, through transformers.js (the
 * Hugging Face tokenizers port), so ids equal the Python reference (tests/unit/tokenizer-parity).
 * Batches are padded dynamically: to the longest text in the batch, not to max length.
 */
import path from 'node:path';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';

export interface EncodedBatch {
  /** Row-major [batchSize, seqLen]. */
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds: Int32Array;
  batchSize: number;
  seqLen: number;
}

export interface EncodeOptions {
  maxLength: number;
  /** Round the padded length up to a multiple of this (helps kernels); 1 disables. */
  padToMultipleOf?: number;
}

/** Pads already-encoded texts to the longest one, rounded up to a multiple (pure). */
export function padBatch(encoded: readonly (readonly number[])[], padId: number, opts: EncodeOptions): EncodedBatch {
  const longest = Math.max(1, ...encoded.map((e) => e.length));
  const mult = opts.padToMultipleOf ?? 8;
  const seqLen = Math.min(opts.maxLength, Math.ceil(longest / mult) * mult);
  const n = encoded.length;
  const inputIds = new Int32Array(n * seqLen).fill(padId);
  const attentionMask = new Int32Array(n * seqLen);
  encoded.forEach((ids, r) => {
    inputIds.set(ids.slice(0, seqLen), r * seqLen);
    attentionMask.fill(1, r * seqLen, r * seqLen + Math.min(ids.length, seqLen));
  });
  return { inputIds, attentionMask, tokenTypeIds: new Int32Array(n * seqLen), batchSize: n, seqLen };
}

/** Indices grouped into batches of similar length (sorted by length: less padding), for inference. */
export function lengthSortedBatches(lengths: readonly number[], batchSize: number): number[][] {
  const order = lengths
    .map((n, i) => [n, i] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, i]) => i);
  const batches: number[][] = [];
  for (let s = 0; s < order.length; s += batchSize) batches.push(order.slice(s, s + batchSize));
  return batches;
}

export class TextTokenizer {
  private constructor(
    private readonly tok: PreTrainedTokenizer,
    readonly dir: string,
  ) {}

  /** Loads a tokenizer from a local Hugging Face folder (never from the network). */
  static async fromDir(dir: string): Promise<TextTokenizer> {
    env.allowRemoteModels = false;
    env.localModelPath = path.dirname(path.resolve(dir)) + path.sep;
    const tok = await AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)));
    return new TextTokenizer(tok, dir);
  }

  get padId(): number {
    return this.tok.pad_token_id ?? 0;
  }

  get unkId(): number {
    return this.tok.unk_token_id;
  }

  get vocabSize(): number {
    return this.tok.get_vocab().size;
  }

  /** Ids with [CLS] ... [SEP], truncated to `maxLength` when given. */
  encode(text: string, maxLength?: number): number[] {
    const ids = this.tok.encode(text);
    if (maxLength === undefined || ids.length <= maxLength) return ids;
    // Keep [CLS] + the first tokens, and end with [SEP], as HF truncation does.
    return [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!];
  }

  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: true });
  }

  tokens(text: string): string[] {
    return this.tok.tokenize(text);
  }

  /** Encodes and pads a batch to its longest member (dynamic padding). */
  encodeBatch(texts: readonly string[], opts: EncodeOptions): EncodedBatch {
    return padBatch(
      texts.map((t) => this.encode(t, opts.maxLength)),
      this.padId,
      opts,
    );
  }

  /** Share of word-piece tokens that are [UNK] (an input-drift signal). */
  oovRate(texts: readonly string[]): number {
    const unk = this.unkId;
    let total = 0;
    let unknown = 0;
    for (const t of texts) {
      const ids = this.tok.encode(t, { add_special_tokens: false });
      total += ids.length;
      unknown += ids.filter((id) => id === unk).length;
    }
    return total ? unknown / total : 0;
  }
}

/**
 * The I/O edge of the `mahalanobis+knn` out-of-scope score (./rule.ts): the pretrained encoder a model
 * folder carries for it (written from the base checkpoint as ONNX, the graph both runtimes run) and the
 * embedding of texts in that encoder's space, loaded beside the model for serving.
 */
import path from 'node:path';
import { TextTokenizer } from '../../features/tokenize';
import { OrtEncoder } from '../../engine/encoder-onnx';
import { neighbourIndex, type NeighbourIndex } from '../../engine/neighbour-index';
import { embedTexts, loadEncoderFolder, writeEncoderFolder } from '../../engine/encoder-folder';
import { NEIGHBOUR_ENCODER_DIR, readNeighbourBank, type ScopeFile, type ScopeView } from './rule';

/** Texts -> L2-normalised mean-pooled embeddings [texts, dim] under one encoder folder. */
export interface TextEmbedder {
  dim: number;
  embed(texts: readonly string[]): Promise<{ data: Float32Array; dim: number }>;
  release(): Promise<void>;
}

/** The embedder of an encoder folder (as a model folder holds it). */
export const loadEmbedder = async (encoderDir: string, maxLength: number): Promise<TextEmbedder> =>
  embedderOf(await TextTokenizer.fromDir(encoderDir), await loadEncoderFolder(encoderDir), maxLength);

/** The embedder of a pretrained checkpoint folder, compiled to the same ONNX graph a model folder ships. */
export const checkpointEmbedder = async (checkpointDir: string, maxLength: number): Promise<TextEmbedder> =>
  embedderOf(await TextTokenizer.fromDir(checkpointDir), await OrtEncoder.fromCheckpoint(checkpointDir), maxLength);

function embedderOf(tokenizer: TextTokenizer, encoder: OrtEncoder, maxLength: number): TextEmbedder {
  const dim = encoder.config.hidden;
  return {
    dim,
    embed: async (texts) => {
      const rows = await embedTexts(tokenizer, encoder, texts, { maxLength, batchSize: 32 });
      const data = new Float32Array(texts.length * dim);
      rows.forEach((v, i) => data.set(v, i * dim));
      return { data, dim };
    },
    release: () => encoder.release(),
  };
}

/** Writes the base checkpoint's encoder into a model folder (scope-encoder/); returns its folder name. */
export function writeNeighbourEncoder(modelDir: string, checkpointDir: string): typeof NEIGHBOUR_ENCODER_DIR {
  writeEncoderFolder(checkpointDir, path.join(modelDir, NEIGHBOUR_ENCODER_DIR));
  return NEIGHBOUR_ENCODER_DIR;
}

/** The encoder and neighbour bank a `mahalanobis+knn` scope names, for `withScope`. */
export async function loadScopeView(modelDir: string, s: ScopeFile): Promise<ScopeView | undefined> {
  if (!s.knn) return undefined;
  const bank = readNeighbourBank(modelDir, s.knn);
  const embedder = await loadEmbedder(path.join(modelDir, s.knn.encoder), s.knn.max_length);
  let index: NeighbourIndex;
  try {
    if (embedder.dim !== s.knn.dim)
      throw new Error(
        `${modelDir}: the scope encoder gives ${embedder.dim}-d embeddings, the bank holds ${s.knn.dim}-d`,
      );
    index = await neighbourIndex(bank, s.knn.dim);
  } catch (e) {
    await embedder.release();
    throw e;
  }
  return {
    bank,
    embed: embedder.embed,
    nearest: index.nearest,
    release: async () => {
      try {
        await embedder.release();
      } finally {
        await index.release();
      }
    },
  };
}

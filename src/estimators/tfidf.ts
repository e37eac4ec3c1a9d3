/**
 * TF-IDF features, with scikit-learn's TfidfVectorizer semantics (lowercase, tokens of 2+ word
 * characters, word n-grams, min_df, smooth idf = ln((1+n)/(1+df)) + 1, optional sublinear tf,
 * L2-normalised rows), so the baseline is the one people know. The token rule is data saved with the
 * vectoriser (as scikit-learn keeps `token_pattern` and `lowercase`), so the Python flavor
 * (src/py/convo_pyfunc.py) reads it rather than repeating it.
 */

export interface SparseVector {
  indices: Int32Array;
  values: Float32Array;
}

export interface TfidfOptions {
  ngramRange: [number, number];
  minDf: number;
  maxFeatures?: number;
  sublinearTf: boolean;
}

export const DEFAULT_TFIDF: TfidfOptions = { ngramRange: [1, 2], minDf: 2, sublinearTf: true };

/**
 * How a text becomes tokens: every match of `pattern`, a regular expression whose \w and \b are ASCII
 * (JavaScript's without the `i` flag, Python's with re.ASCII), after lowercasing when `lowercase`.
 */
export interface TokenRule {
  pattern: string;
  lowercase: boolean;
}

/** Tokens of 2+ word characters, lowercased: scikit-learn's default token_pattern. */
export const DEFAULT_TOKENS: TokenRule = { pattern: '\\b\\w\\w+\\b', lowercase: true };

export interface TfidfState {
  options: TfidfOptions;
  /** Absent in models saved before the rule was saved with them: DEFAULT_TOKENS. */
  tokens?: TokenRule;
  vocabulary: string[];
  idf: number[];
}

const compiled = new Map<string, RegExp>();
const tokenRegex = (pattern: string): RegExp => {
  let re = compiled.get(pattern);
  if (!re) compiled.set(pattern, (re = new RegExp(pattern, 'gu')));
  return re;
};

export function analyze(text: string, [lo, hi]: [number, number], tokens: TokenRule = DEFAULT_TOKENS): string[] {
  const words = (tokens.lowercase ? text.toLowerCase() : text).match(tokenRegex(tokens.pattern)) ?? [];
  const grams: string[] = [];
  for (let n = lo; n <= hi; n++)
    for (let i = 0; i + n <= words.length; i++) grams.push(words.slice(i, i + n).join(' '));
  return grams;
}

export function fitTfidf(
  texts: readonly string[],
  options: TfidfOptions = DEFAULT_TFIDF,
  tokens: TokenRule = DEFAULT_TOKENS,
): TfidfState {
  const df = new Map<string, number>();
  for (const t of texts)
    for (const g of new Set(analyze(t, options.ngramRange, tokens))) df.set(g, (df.get(g) ?? 0) + 1);
  let terms = [...df.entries()].filter(([, d]) => d >= options.minDf);
  if (options.maxFeatures && terms.length > options.maxFeatures)
    terms = terms.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, options.maxFeatures);
  const vocabulary = terms.map(([t]) => t).sort();
  const n = texts.length;
  const idf = vocabulary.map((t) => Math.log((1 + n) / (1 + df.get(t)!)) + 1);
  return { options, tokens: { ...tokens }, vocabulary, idf };
}

export class TfidfVectorizer {
  private readonly index: Map<string, number>;

  constructor(readonly state: TfidfState) {
    this.index = new Map(state.vocabulary.map((t, i) => [t, i]));
  }

  get size(): number {
    return this.state.vocabulary.length;
  }

  transform(text: string): SparseVector {
    const counts = new Map<number, number>();
    for (const g of analyze(text, this.state.options.ngramRange, this.state.tokens)) {
      const i = this.index.get(g);
      if (i !== undefined) counts.set(i, (counts.get(i) ?? 0) + 1);
    }
    const indices = Int32Array.from([...counts.keys()].sort((a, b) => a - b));
    const values = Float32Array.from(indices, (i) => {
      const tf = counts.get(i)!;
      return (this.state.options.sublinearTf ? 1 + Math.log(tf) : tf) * this.state.idf[i]!;
    });
    const norm = Math.hypot(...values);
    if (norm > 0) for (let j = 0; j < values.length; j++) values[j]! /= norm;
    return { indices, values };
  }
}

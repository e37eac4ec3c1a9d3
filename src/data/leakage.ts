/**
 * Held-out rows must stay held out. Anyone who can write data/incoming/ could otherwise copy test rows
 * into training and inflate the gate's score (the champion/challenger gate scores on the test split), so
 * incoming rows that repeat a held-out row are refused at ingestion, quarantined with the reason.
 */

/** A text as duplicates are judged: accents, case, punctuation and white space folded away. */
export function matchKey(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export interface HeldOutTexts {
  exact: Set<string>;
  folded: Set<string>;
  /** What the held-out rows are, for the reason ("the test split"). */
  what: string;
}

export const heldOutTexts = (texts: readonly string[], what: string): HeldOutTexts => ({
  exact: new Set(texts),
  folded: new Set(texts.map(matchKey)),
  what,
});

/** Why `text` may not train (it repeats a held-out row), or undefined when it may. */
export function leakReason(text: string, held: HeldOutTexts): string | undefined {
  const never = 'held-out rows never train';
  if (held.exact.has(text)) return `text: repeats a row of ${held.what} (exact duplicate); ${never}`;
  if (held.folded.has(matchKey(text)))
    return `text: repeats a row of ${held.what} (equal once case, accents and punctuation are folded); ${never}`;
  return undefined;
}

// AUTO-GENERATED from notebooks/02_cleaning.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell clean-02
/**
 * Transcript cleaning: small pure rules, each switchable in CleaningConfig, applied in a fixed
 * order by `cleanText`. PII masking runs first, so nothing downstream (logs, MLflow, model
 * inputs) ever sees raw e-mail addresses, phone numbers or card numbers.
 */

export interface CleaningConfig {
  maskPii: boolean;
  normaliseSpeakers: boolean;
  removeNonVerbal: boolean;
  removeFillers: boolean;
  normaliseWhitespace: boolean;
  lowercase: boolean;
  /** Speaker label variants -> canonical label. */
  speakerMap: Record<string, 'Customer' | 'Agent'>;
}

export const DEFAULT_CLEANING: CleaningConfig = {
  maskPii: true,
  normaliseSpeakers: true,
  removeNonVerbal: true,
  removeFillers: true,
  normaliseWhitespace: true,
  // The default checkpoint's tokenizer is uncased; keeping case leaves the choice to the tokenizer.
  lowercase: false,
  speakerMap: {
    customer: 'Customer',
    client: 'Customer',
    caller: 'Customer',
    user: 'Customer',
    agent: 'Agent',
    'telcom agent': 'Agent',
    rep: 'Agent',
    representative: 'Agent',
    'support agent': 'Agent',
    operator: 'Agent',
  },
};

// cell clean-04
// ---- PII ----------------------------------------------------------------------------------

// An address is found from its "@": a regex that starts at every character of a 20,000-character word
// (looking for an "@" that never comes) took seconds per text, and held the server with it.
const EMAIL_LOCAL = /[A-Za-z0-9._%+-]/;
const EMAIL_DOMAIN = /[A-Za-z0-9.-]+\.[A-Za-z]{2,}/y;
// 13-19 digits, optionally grouped by spaces or dashes (card numbers), checked with Luhn.
const CARD_CANDIDATE = /\b(?:\d[ -]?){12,18}\d\b/g;
// International or national phone numbers: at least 7 digits with common separators.
const PHONE = /(?<![\w/])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?![\w/])/g;

// cell clean-05
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** What /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g replaces, in one pass over the text. */
export function maskEmails(text: string): string {
  let out = '';
  let done = 0; // text before `done` is settled
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    if (at < done) continue;
    let start = at;
    while (start > done && EMAIL_LOCAL.test(text[start - 1]!)) start--;
    EMAIL_DOMAIN.lastIndex = at + 1;
    if (start === at || !EMAIL_DOMAIN.exec(text)) continue;
    out += `${text.slice(done, start)}[EMAIL]`;
    done = EMAIL_DOMAIN.lastIndex;
  }
  return out + text.slice(done);
}

export function maskPii(text: string): string {
  return maskEmails(text)
    .replace(CARD_CANDIDATE, (m) => {
      const digits = m.replace(/\D/g, '');
      return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) ? '[CARD]' : m;
    })
    .replace(PHONE, (m) => {
      const digits = m.replace(/\D/g, '').length;
      // Dates (2024-03-01), amounts and times have fewer digits or look like them; 7+ digits read as a phone.
      if (digits < 7 || /^\d{4}-\d{2}-\d{2}$/.test(m.trim())) return m;
      return '[PHONE]';
    });
}

// cell clean-08
// ---- speakers -----------------------------------------------------------------------------

/**
 * "TelCom Agent:", "Rep:", "CUSTOMER:" -> "Agent:" / "Customer:". A tag counts at a line start, or
 * mid-line right after sentence punctuation (where run-together transcripts start a new turn, which
 * then gets its own line); "the agent: said" mid-sentence is left alone.
 */
export function normaliseSpeakers(text: string, speakerMap: CleaningConfig['speakerMap']): string {
  const names = Object.keys(speakerMap)
    .sort((a, b) => b.length - a.length)
    .map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s+'));
  const canonical = (name: string) => speakerMap[name.toLowerCase().replace(/\s+/g, ' ')] ?? name;
  const atStart = new RegExp(`^[^\\S\\n]*(${names.join('|')})[^\\S\\n]*:[^\\S\\n]*`, 'gim');
  const afterSentence = new RegExp(`([.!?])[^\\S\\n]+(${names.join('|')})[^\\S\\n]*:[^\\S\\n]*`, 'gi');
  return text
    .replace(afterSentence, (_m, punct: string, name: string) => `${punct}\n${canonical(name)}: `)
    .replace(atStart, (_m, name: string) => `${canonical(name)}: `);
}

/** Splits a transcript into turns (after speaker normalisation). */
export function turns(text: string): { speaker: 'Customer' | 'Agent' | 'Unknown'; text: string }[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^(Customer|Agent):\s*(.*)$/.exec(l);
      return m ? { speaker: m[1] as 'Customer' | 'Agent', text: m[2]! } : { speaker: 'Unknown' as const, text: l };
    });
}

// cell clean-11
// ---- non-verbal cues and fillers -----------------------------------------------------------

const CUES =
  'laughs?|laughter|laughing|chuckles?|sighs?|coughs?|inaudible|unintelligible|crosstalk|silence|pause|noise|' +
  'background noise|music|hold music|static|beep|clears throat|cries|crying';
const NON_VERBAL = [
  new RegExp(`\\[(?:${CUES})[^\\]]{0,30}\\]`, 'gi'),
  new RegExp(`\\((?:${CUES})[^)]{0,30}\\)`, 'gi'),
  new RegExp(`<\\s*/?\\s*(?:${CUES})[^>]{0,30}>`, 'gi'),
  new RegExp(`\\*(?:${CUES})\\*`, 'gi'),
];

// cell clean-12
export function removeNonVerbal(text: string): string {
  return NON_VERBAL.reduce((t, re) => t.replace(re, ' '), text);
}

// cell clean-13
// Pure hesitation sounds are always fillers (with the commas around them); "you know", "I mean" and
// "like" only when set off by punctuation (", like," is a filler, "I'd like a refund" is not).
const HESITATION = /(?:,|(?<![ \t]))[ \t]*\b(?:u+h+m*|u+m+|e+r+m+|h+m+|mm+|ah+)\b(?:\.{3}|\u2026|,)?/gi;
const DISCOURSE_MID = /(?:,[ \t]*(?:you know|i mean|like|sort of|kind of)[ \t]*)+,/gi;
const DISCOURSE_END = /(?:,|(?<![ \t]))[ \t]*\b(?:you know|i mean)(?=[ \t]*(?:[.?!]+[ \t]*)?$)/gim;
const DISCOURSE_START = /(^[ \t]*|[.!?][ \t]+|:[ \t]*)(?:you know|i mean|like),[ \t]*/gim;

// cell clean-14
export function removeFillers(text: string): string {
  return text
    .replace(HESITATION, ' ')
    .replace(DISCOURSE_MID, ' ')
    .replace(DISCOURSE_END, '')
    .replace(DISCOURSE_START, '$1');
}

export function normaliseWhitespace(text: string): string {
  return text
    .split('\n')
    .map((l) =>
      l
        .replace(/[ \t\u00A0]+/g, ' ')
        .replace(/(?<!\s)\s+([,.;!?])/g, '$1')
        .replace(/([,;])\1+/g, '$1')
        .replace(/^[\s,;]+/, '')
        .trim(),
    )
    .filter(Boolean)
    .join('\n');
}

/** Applies the enabled rules in order: PII, non-verbal cues, fillers, speakers, whitespace, case. */
export function cleanText(text: string, cfg: CleaningConfig = DEFAULT_CLEANING): string {
  let t = text.replace(/\r\n?/g, '\n');
  if (cfg.maskPii) t = maskPii(t);
  if (cfg.removeNonVerbal) t = removeNonVerbal(t);
  if (cfg.removeFillers) t = removeFillers(t);
  // After fillers: "Uh, TelCom Agent: ..." only starts with its tag once "Uh," is gone.
  if (cfg.normaliseSpeakers) t = normaliseSpeakers(t, cfg.speakerMap);
  if (cfg.normaliseWhitespace) t = normaliseWhitespace(t);
  if (cfg.lowercase) t = t.toLowerCase();
  return t;
}

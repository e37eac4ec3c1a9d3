/**
 * The weekly churn report (pure parts): conversations per action bucket (A: call them, B: offer a
 * discount, C: retained), counts over time, and the phrases that drove each churn prediction,
 * found by occlusion (drop each phrase, re-score, see how much p(churn) falls), or for tabular
 * models the features that did (each set to its typical value in turn, see src/kinds/tabular/model.ts).
 */
import { reportHtml } from '../plots/html';

export interface Attribution {
  /** A phrase of the conversation, or `column = value` for a tabular model. */
  phrase: string;
  /** p(churn) with the phrase minus p(churn) without it (with the value minus with the typical value). */
  impact: number;
  /** What the report sums over: the phrase (lowercased) by default, the column for features. */
  group?: string;
}

/** What a report is about: conversations (text models) or customers (tabular models). */
export interface ReportSubject {
  unit: 'conversations' | 'customers';
  drivers: 'phrases' | 'features';
}
export const CONVERSATIONS: ReportSubject = { unit: 'conversations', drivers: 'phrases' };
export const CUSTOMERS: ReportSubject = { unit: 'customers', drivers: 'features' };

/** Splits a conversation into phrases: turns, then sentences within them. */
export function phrases(text: string): string[] {
  return text
    .split('\n')
    .flatMap((turn) => turn.replace(/^(Customer|Agent):\s*/, '').split(/(?<=[.!?])\s+/))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Occlusion attributions: for each phrase, p(churn | text) - p(churn | text without the phrase),
 * scored in one batch. `score` returns p(churn) per text.
 */
export async function occlusion(
  text: string,
  score: (texts: string[]) => Promise<number[]>,
  top = 3,
): Promise<Attribution[]> {
  const ps = phrases(text);
  if (ps.length === 0) return [];
  const variants = ps.map((p) => text.replace(p, ' '));
  const [base, ...without] = await score([text, ...variants]);
  return ps
    .map((phrase, i) => ({ phrase, impact: base! - without[i]! }))
    .sort((a, b) => b.impact - a.impact)
    .slice(0, top);
}

export interface ChurnRow {
  ts: string;
  /** The conversation's text hash, or the customer id a tabular request sent. */
  ref: string;
  bucket: 'A' | 'B' | 'C';
  p_churn: number;
  label: string;
  top_phrases: Attribution[];
}

/**
 * A CSV text cell that a spreadsheet shows as text: quoted, and a leading =, +, -, @, tab or carriage
 * return (which Excel and LibreOffice would evaluate as a formula) escaped with a single quote (OWASP).
 */
export function csvTextCell(s: string): string {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return `"${safe.replace(/"/g, '""')}"`;
}

export const CHURN_CSV_HEADER =
  'ts,ref,bucket,p_churn,label,top_driver_1,impact_1,top_driver_2,impact_2,top_driver_3,impact_3';

/** One CSV line of a scored conversation or customer (no newline). */
export function churnCsvLine(r: ChurnRow): string {
  const q = csvTextCell;
  const cells = [r.ts, q(r.ref), r.bucket, r.p_churn.toFixed(4), q(r.label)];
  for (let i = 0; i < 3; i++)
    cells.push(q(r.top_phrases[i]?.phrase ?? ''), r.top_phrases[i] ? r.top_phrases[i]!.impact.toFixed(4) : '');
  return cells.join(',');
}

export function churnCsv(rows: ChurnRow[]): string {
  return `${[CHURN_CSV_HEADER, ...rows.map(churnCsvLine)].join('\n')}\n`;
}

/** Bucket-A rows listed in the report. */
const LISTED = 50;
/** Distinct driver phrases kept while a week streams past; the weakest are dropped beyond this. */
const MAX_DRIVERS = 20_000;

/**
 * What the report shows, gathered one row at a time: counts per bucket and day, the drivers of bucket-A
 * predictions and the first bucket-A rows. Its size does not grow with the number of rows (the report
 * streams the serving log; a week of traffic never sits in memory).
 */
export class ChurnSummary {
  readonly counts: Record<string, number> = { A: 0, B: 0, C: 0 };
  private readonly perDay = new Map<string, Record<string, number>>();
  private readonly drivers = new Map<string, { n: number; impact: number }>();
  readonly listed: ChurnRow[] = [];

  add(r: ChurnRow): void {
    this.counts[r.bucket] = (this.counts[r.bucket] ?? 0) + 1;
    const day = r.ts.slice(0, 10);
    const d = this.perDay.get(day) ?? {};
    d[r.bucket] = (d[r.bucket] ?? 0) + 1;
    this.perDay.set(day, d);
    if (r.bucket !== 'A') return;
    if (this.listed.length < LISTED) this.listed.push(r);
    for (const a of r.top_phrases) {
      const key = a.group ?? a.phrase.toLowerCase();
      const v = this.drivers.get(key) ?? { n: 0, impact: 0 };
      this.drivers.set(key, { n: v.n + 1, impact: v.impact + a.impact });
    }
    if (this.drivers.size > MAX_DRIVERS) {
      const weakest = [...this.drivers.entries()].sort((x, y) => x[1].impact - y[1].impact);
      for (const [k] of weakest.slice(0, this.drivers.size - MAX_DRIVERS / 2)) this.drivers.delete(k);
    }
  }

  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  html(task: string, period: { from: string; to: string }, subject: ReportSubject = CONVERSATIONS): string {
    const unit = subject.unit;
    const Unit = unit[0]!.toUpperCase() + unit.slice(1);
    const days = [...this.perDay.keys()].sort();
    const buckets = [...new Set([...this.perDay.values()].flatMap((d) => Object.keys(d)))].sort();
    const topDrivers = [...this.drivers.entries()].sort((a, b) => b[1].impact - a[1].impact).slice(0, 15);
    return reportHtml(`Churn report: ${task}, ${period.from} to ${period.to}`, [
      {
        heading: 'Action buckets',
        table: {
          columns: ['bucket', 'meaning', unit],
          rows: [
            ['A', 'very likely to churn: call them', this.counts.A ?? 0],
            ['B', 'on the fence: offer a discount', this.counts.B ?? 0],
            ['C', 'retained', this.counts.C ?? 0],
          ],
        },
      },
      {
        heading: `${Unit} scored per day`,
        figure: {
          data: buckets.map((b) => ({
            type: 'bar',
            name: `bucket ${b}`,
            x: days,
            y: days.map((d) => this.perDay.get(d)![b] ?? 0),
          })),
          layout: { barmode: 'stack' },
        },
      },
      {
        heading: 'What drove the bucket-A predictions',
        text:
          subject.drivers === 'phrases'
            ? 'Phrases whose removal lowered p(churn) the most (occlusion), summed over bucket-A conversations.'
            : 'Features whose actual value raised p(churn) the most over their typical training value (baseline ' +
              'substitution, one feature at a time), summed over bucket-A customers.',
        table: {
          columns: [subject.drivers === 'phrases' ? 'phrase' : 'feature', unit, 'total impact on p(churn)'],
          rows: topDrivers.map(([p, v]) => [p, v.n, v.impact]),
        },
      },
      {
        heading: `Bucket A ${unit}`,
        table: {
          columns: [subject.unit === 'customers' ? 'customer' : 'time', 'p(churn)', `top ${subject.drivers}`],
          rows: this.listed.map((r) => [
            subject.unit === 'customers' ? r.ref : r.ts,
            r.p_churn,
            r.top_phrases.map((a) => `${a.phrase} (+${a.impact.toFixed(2)})`).join(' | '),
          ]),
        },
      },
    ]);
  }
}

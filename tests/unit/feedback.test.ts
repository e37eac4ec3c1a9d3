import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { heldOutTexts, matchKey } from '../../src/data/leakage';
import { seededRandom } from '../../src/data/split';
import { csvField, undefuseFormula } from '../../src/io/csv';
import { acceptLabelled, reviewLabels, type ImportContext } from '../../src/feedback/review-import';
import {
  cosineNearDuplicate,
  reviewItems,
  selectReviewBatch,
  sha256Hex,
  type Candidate,
} from '../../src/feedback/select';
import { estimateSlice, servedRight, sliceExamples } from '../../src/feedback/slice';
import { productionGate } from '../../src/retrain/retrain';
import { feedbackPaths, importedItemIds, readReviewed, storeReviewed } from '../../src/feedback/store';
import type { BatchManifest, ReviewedRow } from '../../src/feedback/types';

const CLASSES = ['card', 'payments', 'account'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'feedback-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function candidate(i: number, o: Partial<Candidate> = {}): Candidate {
  const text = o.text ?? `query number ${i} about my ${CLASSES[i % 3]}`;
  return {
    text,
    textSha256: sha256Hex(text),
    servedAt: '2026-12-01T10:00:00.000Z',
    version: '3',
    predicted: CLASSES[i % 3]!,
    topLabel: CLASSES[i % 3]!,
    inScope: true,
    confidence: 0.9,
    margin: 0.8,
    ...o,
  };
}
const none = heldOutTexts([], 'the test split');

describe('selectReviewBatch', () => {
  it('mixes uncertain answers with a uniform control sample of at least 20%, marked as such', () => {
    const cs = Array.from({ length: 500 }, (_, i) =>
      candidate(
        i,
        i % 10 === 0 ? { inScope: false, predicted: 'out_of_scope', confidence: 0.3 } : { margin: (i % 97) / 97 },
      ),
    );
    const s = selectReviewBatch(
      { candidates: cs, classes: CLASSES, heldOut: none },
      { size: 50, controlShare: 0.2, seed: 1 },
    );
    expect(s.chosen).toHaveLength(50);
    expect(s.counts.control).toBe(10);
    expect(s.counts.out_of_scope + s.counts.low_margin).toBe(40);
    expect(s.counts.out_of_scope).toBeGreaterThan(10); // the reasons take turns
    // The low-margin rows are the smallest margins there are.
    const lowMargins = s.chosen.filter((c) => c.reason === 'low_margin').map((c) => c.candidate.margin);
    expect(Math.max(...lowMargins)).toBeLessThan(0.25);
    expect(() =>
      selectReviewBatch({ candidates: cs, classes: CLASSES, heldOut: none }, { size: 50, controlShare: 0.1, seed: 1 }),
    ).toThrow(/control share must be between 0.2 and 1/);
  });

  it('never sends a text of the held-out data, a repeat, a text sent before, or a near-duplicate', () => {
    const test = 'How do I activate my new card?';
    const cs = [
      candidate(0, { text: test, margin: 0 }),
      candidate(1, { text: 'HOW do i activate my new card', margin: 0 }), // folded equal to a test row
      candidate(2, { text: 'why was my transfer declined', margin: 0.01 }),
      candidate(3, { text: 'Why was my transfer declined?!', margin: 0.02 }), // a repeat once folded
      candidate(4, { text: 'asked before', margin: 0.03 }),
      candidate(5, { text: 'my payment failed twice', margin: 0.04 }),
      candidate(6, { text: 'the payment failed two times', margin: 0.05 }), // near-duplicate by embedding
      ...Array.from({ length: 40 }, (_, i) => candidate(10 + i)),
    ];
    const vectors = new Map<string, Float32Array>([
      ['my payment failed twice', Float32Array.from([1, 0])],
      ['the payment failed two times', Float32Array.from([0.98, Math.sqrt(1 - 0.98 ** 2)])],
      ['why was my transfer declined', Float32Array.from([0, 1])],
    ]);
    const s = selectReviewBatch(
      {
        candidates: cs,
        classes: CLASSES,
        heldOut: heldOutTexts([test], 'the test split'),
        alreadySent: new Set([matchKey('asked before')]),
        nearDuplicate: cosineNearDuplicate(vectors),
      },
      { size: 20, controlShare: 0.2, seed: 3, maxLabelShare: 1 },
    );
    const sent = s.chosen.map((c) => c.candidate.text);
    expect(sent).not.toContain(test);
    expect(sent).not.toContain('HOW do i activate my new card');
    expect(sent).not.toContain('asked before');
    expect(sent.filter((t) => matchKey(t) === matchKey('why was my transfer declined'))).toHaveLength(1);
    expect(sent).toContain('my payment failed twice');
    expect(sent).not.toContain('the payment failed two times');
    expect(s.skipped).toMatchObject({ heldOut: 2, alreadySent: 1, nearDuplicates: 1 });
    expect(s.skipped.repeats).toBeGreaterThanOrEqual(1); // the folded twin (and any text the control sample took)
  });

  it('no predicted class takes more than its share of the uncertain part while others have candidates', () => {
    const cs = Array.from({ length: 300 }, (_, i) =>
      candidate(i, { topLabel: i < 250 ? 'card' : CLASSES[i % 3]!, margin: i < 250 ? 0.01 : 0.5 }),
    );
    const s = selectReviewBatch(
      { candidates: cs, classes: CLASSES, heldOut: none },
      { size: 50, controlShare: 0.2, seed: 2 },
    );
    const uncertain = s.chosen.filter((c) => c.reason !== 'control');
    const card = uncertain.filter((c) => c.candidate.topLabel === 'card').length;
    expect(card).toBeLessThanOrEqual(Math.floor(40 * 0.5)); // 1.5 / 3 classes
    expect(uncertain).toHaveLength(40);
  });

  it('items carry ids, the model version and the digest of the text as sent', () => {
    const s = selectReviewBatch(
      { candidates: [candidate(1), candidate(2)], classes: CLASSES, heldOut: none },
      { size: 2, controlShare: 0.5, seed: 0 },
    );
    const items = reviewItems(s, { batchId: 'b1', task: 't', model: 'm' });
    expect(items.map((i) => i.item_id)).toEqual(['b1-0001', 'b1-0002']);
    expect(items[0]).toMatchObject({ version: '3', text_sha256: sha256Hex(items[0]!.text) });
  });
});

function manifest(id: string, over: Partial<BatchManifest> = {}): BatchManifest {
  const s = selectReviewBatch(
    {
      candidates: Array.from({ length: 10 }, (_, i) => candidate(i, { text: `${id} text ${i}` })),
      classes: CLASSES,
      heldOut: none,
    },
    { size: 10, controlShare: 0.5, seed: 0 },
  );
  return {
    batch_id: id,
    task: 'support-category',
    model: 'support-category',
    version: '3',
    created: '2026-12-06T00:00:00Z',
    labels: reviewLabels(CLASSES),
    counts: s.counts,
    items: reviewItems(s, { batchId: id, task: 'support-category', model: 'support-category' }),
    ...over,
  };
}

describe('acceptLabelled', () => {
  const b = manifest('b1');
  const other = manifest('b2', { task: 'churn-intent', model: 'churn-intent' });
  const ctx: ImportContext = {
    task: 'support-category',
    model: 'support-category',
    batches: new Map([
      ['b1', b],
      ['b2', other],
    ]),
    imported: new Set(['b1-0010']),
    source: 'labelled.csv',
    now: new Date('2026-12-06T12:00:00Z'),
    defaultAnnotator: 'ana',
  };
  const row = (i: number, label: string, over: Record<string, string> = {}) => ({
    item_id: b.items[i]!.item_id,
    batch_id: 'b1',
    text: b.items[i]!.text,
    label,
    ...over,
  });
  const reason = (v: ReturnType<typeof acceptLabelled>) => ('reason' in v ? v.reason : 'accepted');

  it('accepts a known label or out_of_scope, with provenance; refuses each kind of bad row with its reason', () => {
    const seen = new Set<string>();
    const ok = acceptLabelled(row(0, 'payments', { annotator: 'bo' }), ctx, seen);
    expect(ok).toMatchObject({ row: { label: 'payments', annotator: 'bo', version: '3', source: 'labelled.csv' } });
    expect(reason(acceptLabelled(row(1, 'out_of_scope'), ctx, seen))).toBe('accepted');
    expect(reason(acceptLabelled(row(2, 'loans'), ctx, seen))).toMatch(
      /label: "loans" is not one of: card, payments, account, out_of_scope/,
    );
    expect(reason(acceptLabelled(row(3, ''), ctx, seen))).toMatch(/label: empty/);
    expect(reason(acceptLabelled(row(4, 'card', { text: 'something else' }), ctx, seen))).toMatch(/text: differs/);
    expect(reason(acceptLabelled(row(5, 'card', { batch_id: 'b2' }), ctx, seen))).toMatch(
      /is a batch of churn-intent \(model churn-intent\), not of support-category/,
    );
    expect(reason(acceptLabelled(row(5, 'card', { batch_id: 'b9' }), ctx, seen))).toMatch(/b9 is not a review batch/);
    expect(reason(acceptLabelled(row(5, 'card', { item_id: 'b1-0999' }), ctx, seen))).toMatch(/not in batch b1/);
    expect(reason(acceptLabelled(row(0, 'card'), ctx, seen))).toMatch(/appears twice in this import/);
    expect(reason(acceptLabelled(row(9, 'card'), ctx, seen))).toMatch(/b1-0010 was imported before/);
  });

  it('a text a spreadsheet would run as a formula goes out defused and comes back as it was', () => {
    const formula = '=HYPERLINK("http://x","click")';
    expect(csvField(formula)).toBe(`"'=HYPERLINK(""http://x"",""click"")"`);
    expect(undefuseFormula(`'${formula}`, formula)).toBe(formula);
    expect(undefuseFormula("'quoted", "'quoted")).toBe("'quoted");
  });
});

describe('the reviewed rows on disk', () => {
  it('control rows go to the slice, out_of_scope to its own file, the rest to data/incoming; storing is idempotent by item id', () => {
    const p = feedbackPaths(tmp, 'support-category');
    const b = manifest('b3');
    const rows: ReviewedRow[] = b.items.map((item, i) => ({
      ...item,
      label: i === 0 ? 'out_of_scope' : item.top_label,
      annotator: 'ana',
      labelled_at: '2026-12-06T12:00:00Z',
      source: 'x.csv',
    }));
    const counts = storeReviewed(p, rows);
    expect(counts.slice).toBe(b.counts.control);
    expect(counts.training + counts.out_of_scope + counts.slice).toBe(10);
    expect(fs.readdirSync(p.incoming)).toEqual(['reviewed-b3.jsonl']);
    expect(readReviewed(p, 'training').every((r) => r.reason !== 'control' && r.label !== 'out_of_scope')).toBe(true);
    expect(importedItemIds(p).size).toBe(10);
  });
});

describe('the production slice', () => {
  it("the 95% interval covers the stream's true accuracy for most seeds, and is not trivially wide", () => {
    // A stream whose model is right on 80% of one kind of query and 50% of another (70% overall, by design
    // unknown to the estimator); review batches sample it; the control rows' labels come from the truth.
    let covered = 0;
    let width = 0;
    const seeds = 200;
    for (let seed = 1; seed <= seeds; seed++) {
      const rand = seededRandom(seed);
      const stream = Array.from({ length: 3000 }, (_, i) => {
        const hard = rand() < 1 / 3;
        const right = rand() < (hard ? 0.5 : 0.8);
        const truth = CLASSES[i % 3]!;
        const answered = right ? truth : CLASSES[(i + 1) % 3]!;
        return {
          c: candidate(i, {
            text: `s${seed} q${i}`,
            topLabel: answered,
            predicted: answered,
            margin: hard ? 0.1 : 0.6,
          }),
          truth,
        };
      });
      const truthOf = new Map(stream.map((s) => [s.c.text, s.truth]));
      const trueAccuracy = stream.filter((s) => s.c.topLabel === s.truth).length / stream.length;
      const sel = selectReviewBatch(
        { candidates: stream.map((s) => s.c), classes: CLASSES, heldOut: none },
        { size: 400, controlShare: 0.25, seed },
      );
      const items = reviewItems(sel, { batchId: `b${seed}`, task: 't', model: 'm' });
      const reviewed: ReviewedRow[] = items
        .filter((i) => i.reason === 'control')
        .map((i) => ({ ...i, label: truthOf.get(i.text)!, annotator: 'sim', labelled_at: '', source: 'sim' }));
      const [e] = estimateSlice(reviewed);
      expect(e!.rows).toBe(100);
      if (e!.accuracy.lower <= trueAccuracy && trueAccuracy <= e!.accuracy.upper) covered++;
      width += e!.accuracy.upper - e!.accuracy.lower;
    }
    expect(covered / seeds).toBeGreaterThanOrEqual(0.9);
    expect(width / seeds).toBeLessThan(0.2);
  });

  it('judges out_of_scope answers: right when a person also says out of scope; refuses non-control rows', () => {
    expect(servedRight({ label: 'out_of_scope', in_scope: false, top_label: 'card' })).toBe(true);
    expect(servedRight({ label: 'card', in_scope: false, top_label: 'card' })).toBe(false);
    expect(servedRight({ label: 'card', in_scope: true, top_label: 'card' })).toBe(true);
    const b = manifest('b4');
    const notControl = b.items.find((i) => i.reason !== 'control')!;
    expect(() => estimateSlice([{ ...notControl, label: 'card', annotator: '', labelled_at: '', source: '' }])).toThrow(
      /not a control row/,
    );
  });
});

describe('the production gate', () => {
  const policy = { minMacroF1: 0.6, tolerance: 0.02 };
  it('refuses a challenger that loses on real traffic by more than the tolerance, whatever its home score', () => {
    expect(productionGate(0.7, 0.8, 40, policy)).toMatchObject({ promote: false });
    expect(productionGate(0.7, 0.8, 40, policy).reason).toMatch(
      /worse than the champion's 0.8000 on the production slice \(40 reviewed rows/,
    );
    expect(productionGate(0.79, 0.8, 40, policy).promote).toBe(true);
    expect(productionGate(0.5, undefined, 40, policy).promote).toBe(true);
  });

  it('the slice gives the gate in-scope rows with a label the model has, as held-out examples', () => {
    const b = manifest('b5');
    const rows: ReviewedRow[] = b.items
      .filter((i) => i.reason === 'control')
      .map((i, k) => ({
        ...i,
        label: k === 0 ? 'out_of_scope' : k === 1 ? 'loans' : 'card',
        annotator: '',
        labelled_at: '',
        source: '',
      }));
    const ex = sliceExamples(rows, CLASSES);
    expect(ex).toHaveLength(rows.length - 2);
    expect(ex.every((e) => e.label === 'card' && e.id.startsWith('production-slice/'))).toBe(true);
  });
});

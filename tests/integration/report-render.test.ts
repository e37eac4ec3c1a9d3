import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { prepareTask, type PreparedTask } from '../../src/data/prepare';
import { dataReportHtml } from '../../src/data/tracking';
import { TASKS } from '../../src/data/tasks';
import { evaluate } from '../../src/evaluate/metrics';
import { evaluationHtml } from '../../src/evaluate/report';
import { renderedDom } from '../helpers/browser';

// The reports as a person sees them: opened in headless Chromium at 1280 px, read back as the DOM
// plotly drew. A reversed scale, a matrix squeezed into a few pixels or empty cells show up here.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'report-render-'));
let intents: PreparedTask;

beforeAll(() => {
  intents = prepareTask(TASKS['support-intent'], cfg.paths.dataRaw, { maxPerSplit: 2000 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function open(name: string, html: string): Promise<string> {
  const file = path.join(tmp, `${name}.html`);
  fs.writeFileSync(file, html);
  return renderedDom(`file://${file}`);
}

/** The y positions (px) of a plot's y-axis tick labels, in DOM order, with their texts. */
function yTicks(svg: string): { label: string; y: number }[] {
  return [
    ...svg.matchAll(/<g class="ytick"><text[^>]*data-unformatted="([^"]*)"[^>]*transform="translate\(0,([\d.]+)\)"/g),
  ].map((m) => ({ label: m[1]!, y: Number(m[2]) }));
}

/** Texts plotly drew inside heatmap cells. */
const cellTexts = (svg: string) =>
  [...svg.matchAll(/<g class="heatmap-label"><text[^>]*data-unformatted="([^"]*)"/g)].map((m) =>
    m[1]!.replace(/&lt;br&gt;|<br>/g, ' '),
  );

/** The report section holding `text` (each section is one heading with its table or figure). */
const sectionWith = (dom: string, text: string) => dom.split('<section>').find((s) => s.includes(text)) ?? '';

describe('evaluation and data reports in a browser', () => {
  it('support-intent: 77 readable confusion-matrix rows, each non-zero cell showing its count', async () => {
    const labels = intents.labelMap.labels;
    expect(labels).toHaveLength(77);
    // One in eight test examples confused with the next intent: a diagonal and an off-diagonal line.
    const yTrue = intents.splits.test.map((e) => intents.labelMap.label2id[e.label]!);
    const yPred = yTrue.map((t, i) => (i % 8 === 0 ? (t + 1) % 77 : t));
    const e = evaluate(yTrue, yPred, labels);
    const dom = await open('intents', evaluationHtml('support-intent (test)', e));
    const matrix = dom.slice(dom.indexOf('<h2>Confusion matrix</h2>'), dom.indexOf('<h2>Classification report</h2>'));
    const ticks = yTicks(matrix);
    expect(ticks.map((t) => t.label).sort()).toEqual([...labels].sort());
    // Rows at least 12 px apart: a label per row that a person can read.
    const ys = ticks.map((t) => t.y).sort((a, b) => a - b);
    expect(Math.min(...ys.slice(1).map((y, i) => y - ys[i]!))).toBeGreaterThanOrEqual(12);
    // Every non-zero cell carries its count; empty cells stay blank.
    const nonZero = e.confusion.flat().filter((v) => v > 0);
    expect(cellTexts(matrix).sort()).toEqual(nonZero.map(String).sort());
    // The classification report is a table with a row per class and the three summary rows.
    const report = dom.slice(dom.indexOf('<h2>Classification report</h2>'));
    expect(report.match(/<tr>/g)!.length).toBe(1 + 77 + 3);
  }, 180_000);

  it('churn: counts with row percentages, a precision-recall curve and a threshold view with axis titles', async () => {
    // 40 churners out of 400, 4 of them missed: the cell that matters must be visible.
    const yTrue = Array.from({ length: 400 }, (_, i) => (i % 10 === 0 ? 1 : 0));
    const probs = yTrue.flatMap((y, i) => {
      const p = y ? (i % 100 === 0 ? 0.3 : 0.7 + (i % 7) / 30) : 0.05 + (i % 13) / 40;
      return [1 - p, p];
    });
    const yPred = yTrue.map((_, i) => (probs[2 * i + 1]! >= 0.5 ? 1 : 0));
    const e = evaluate(yTrue, yPred, ['no', 'yes'], probs, 1);
    expect(e.confusion[1]![0]).toBe(4);
    const dom = await open(
      'churn',
      evaluationHtml('churn (test)', e, { loss: { x: [1, 2, 3, 4], y: [0.7, 0.5, 0.4, 0.35], per: 'step' } }),
    );
    const matrix = dom.slice(dom.indexOf('<h2>Confusion matrix</h2>'), dom.indexOf('<h2>Classification report</h2>'));
    expect(cellTexts(matrix)).toContain('4 10%');
    expect(cellTexts(matrix)).toContain('36 90%');
    for (const heading of ['Precision and recall', 'Threshold view', 'Training loss'])
      expect(dom, heading).toContain(`<h2>${heading}</h2>`);
    const titles = [...dom.matchAll(/class="g-[xy]title"[^>]*>.*?data-unformatted="([^"]+)"/g)].map((m) => m[1]);
    expect(titles).toEqual(
      expect.arrayContaining([
        'predicted label',
        'true label',
        'recall',
        'precision',
        'optimizer step',
        'cross-entropy',
      ]),
    );
    expect(titles).not.toContain('epoch');
  }, 180_000);

  it('the data report gives each of 77 labels its own row', async () => {
    const dom = await open('data', dataReportHtml(TASKS['support-intent'], intents));
    const ticks = yTicks(sectionWith(dom, 'Label share per split'));
    expect(new Set(ticks.map((t) => t.label))).toEqual(new Set(intents.labelMap.labels));
    const ys = [...new Set(ticks.map((t) => t.y))].sort((a, b) => a - b);
    expect(Math.min(...ys.slice(1).map((y, i) => y - ys[i]!))).toBeGreaterThanOrEqual(10);
  }, 180_000);
});

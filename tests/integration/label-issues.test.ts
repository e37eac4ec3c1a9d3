import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { encodeLabels } from '../../src/data/labels';
import { prepareTask } from '../../src/data/prepare';
import { taskSpec } from '../../src/data/tasks';
import { applyCorrections, confidentLearningIssues, outOfFoldProbabilities } from '../../src/feedback/label-issues';
import { runCommand } from '../helpers/cli';

// Confident learning as cleanlab computes it: the same out-of-fold probabilities go to our implementation and
// to cleanlab.filter.find_label_issues (the project's venv), and the two must name the same rows in the same order.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'label-issues-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('label issues (confident learning)', () => {
  it('finds the same rows as cleanlab on the same probabilities, and most of the labels flipped on purpose', async () => {
    const p = prepareTask(taskSpec('support-category'), cfg.paths.dataRaw, { maxPerSplit: 600 });
    const labels = p.labelMap.labels;
    // Every 25th row gets the next class's label: known errors among real ones.
    const flipped = new Set<number>();
    const rows = p.splits.train.map((e, i) => {
      if (i % 25 !== 0) return e;
      flipped.add(i);
      return { ...e, label: labels[(labels.indexOf(e.label) + 1) % labels.length]! };
    });
    const y = encodeLabels(
      rows.map((e) => e.label),
      p.labelMap,
    );
    const probs = outOfFoldProbabilities(rows, p.labelMap, { folds: 5, seed: 1 });
    const ours = confidentLearningIssues(y, probs, labels.length).issues.map((i) => i.index);

    fs.writeFileSync(
      path.join(tmp, 'in.json'),
      JSON.stringify({ labels: y, probs: Array.from(probs), k: labels.length }),
    );
    const theirs = JSON.parse(
      await runCommand(cfg.python, [
        '-c',
        [
          'import json, sys, numpy as np',
          'from cleanlab.filter import find_label_issues',
          'd = json.load(open(sys.argv[1]))',
          "p = np.array(d['probs'], dtype=np.float32).reshape(-1, d['k'])",
          'p = p / p.sum(axis=1, keepdims=True)',
          "r = find_label_issues(np.array(d['labels']), p, filter_by='confident_learning', return_indices_ranked_by='self_confidence')",
          'print(json.dumps([int(i) for i in r]))',
        ].join('\n'),
        path.join(tmp, 'in.json'),
      ]),
    ) as number[];
    console.log(
      `[label-issues] ${rows.length} rows, ${flipped.size} flipped: ours ${ours.length}, cleanlab ${theirs.length}`,
    );
    expect(ours).toEqual(theirs);
    const found = ours.filter((i) => flipped.has(i)).length;
    expect(found / flipped.size).toBeGreaterThan(0.5);
    expect(found / ours.length).toBeGreaterThan(0.2); // a good share of what is found (the rest: real ambiguities)

    // A reviewer's correction relabels the row, or drops it as out of scope.
    const fixed = applyCorrections(rows, [
      { text: rows[0]!.text, label: p.splits.train[0]!.label, labelled_at: '2026-12-06T10:00:00Z' },
      { text: rows[1]!.text.toUpperCase(), label: 'out_of_scope', labelled_at: '2026-12-06T10:00:00Z' },
    ]);
    expect(fixed).toMatchObject({ relabelled: 1, dropped: 1 });
    expect(fixed.rows[0]!.label).toBe(p.splits.train[0]!.label);
  });
});

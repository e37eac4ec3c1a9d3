/** Label encoding with a persisted map, and class weights for imbalanced tasks. */

export interface LabelMap {
  labels: string[];
  label2id: Record<string, number>;
  id2label: Record<string, string>;
}

/** Sorted labels -> ids, so the same label set always gets the same ids. */
export function buildLabelMap(labels: Iterable<string>): LabelMap {
  const sorted = [...new Set(labels)].sort();
  return {
    labels: sorted,
    label2id: Object.fromEntries(sorted.map((l, i) => [l, i])),
    id2label: Object.fromEntries(sorted.map((l, i) => [String(i), l])),
  };
}

export function encodeLabels(labels: readonly string[], map: LabelMap): number[] {
  return labels.map((l) => {
    const id = map.label2id[l];
    if (id === undefined) throw new Error(`label "${l}" is not in the label map (${map.labels.length} labels)`);
    return id;
  });
}

/** "Balanced" weights n / (k * count_c), as scikit-learn computes them: rare classes weigh more. */
export function classWeights(labelIds: readonly number[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const id of labelIds) counts[id]! += 1;
  return counts.map((c) => (c === 0 ? 0 : labelIds.length / (numClasses * c)));
}

/** Figure builders (pure): data in, plotly figure out. */
import type { Figure } from './html';

/** Grouped bars: share of each label in each split. */
export function labelDistributionFigure(shares: Record<string, Record<string, number>>, title = 'Label share per split'): Figure {
  const labels = [...new Set(Object.values(shares).flatMap((s) => Object.keys(s)))].sort();
  return {
    data: Object.entries(shares).map(([split, s]) => ({ type: 'bar', name: split, x: labels, y: labels.map((l) => s[l] ?? 0) })),
    layout: { title: { text: title }, barmode: 'group', yaxis: { tickformat: '.1%' }, xaxis: { automargin: true } },
  };
}

/** Overlaid histograms of a numeric value per group (e.g. text length in tokens per class). */
export function histogramFigure(values: Record<string, number[]>, title: string, xTitle: string): Figure {
  return {
    data: Object.entries(values).map(([name, x]) => ({ type: 'histogram', name, x, opacity: 0.6, histnorm: 'probability' })),
    layout: { title: { text: title }, barmode: 'overlay', xaxis: { title: { text: xTitle } }, yaxis: { title: { text: 'share' } } },
  };
}

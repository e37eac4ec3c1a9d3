/** Figure builders (pure): data in, plotly figure out. */
import type { Figure } from './html';

/** Grouped bars: share of each label in each split. */
export function labelDistributionFigure(
  shares: Record<string, Record<string, number>>,
  title = 'Label share per split',
): Figure {
  const labels = [...new Set(Object.values(shares).flatMap((s) => Object.keys(s)))].sort();
  return {
    data: Object.entries(shares).map(([split, s]) => ({
      type: 'bar',
      name: split,
      x: labels,
      y: labels.map((l) => s[l] ?? 0),
    })),
    layout: { title: { text: title }, barmode: 'group', yaxis: { tickformat: '.1%' }, xaxis: { automargin: true } },
  };
}

/** Overlaid histograms of a numeric value per group (e.g. text length in tokens per class). */
export function histogramFigure(values: Record<string, number[]>, title: string, xTitle: string): Figure {
  return {
    data: Object.entries(values).map(([name, x]) => ({
      type: 'histogram',
      name,
      x,
      opacity: 0.6,
      histnorm: 'probability',
    })),
    layout: {
      title: { text: title },
      barmode: 'overlay',
      xaxis: { title: { text: xTitle } },
      yaxis: { title: { text: 'share' } },
    },
  };
}

/** Confusion matrix heatmap, rows = true label, columns = predicted, normalised per row. */
export function confusionMatrixFigure(
  confusion: number[][],
  labels: string[],
  title = 'Confusion matrix (row-normalised)',
): Figure {
  const z = confusion.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (total ? v / total : 0));
  });
  return {
    data: [
      {
        type: 'heatmap',
        z,
        x: labels,
        y: labels,
        colorscale: 'Blues',
        zmin: 0,
        zmax: 1,
        text: confusion,
        hovertemplate: 'true %{y}<br>pred %{x}<br>%{text} (%{z:.1%})<extra></extra>',
      },
    ],
    layout: {
      title: { text: title },
      xaxis: { title: { text: 'predicted' }, automargin: true },
      yaxis: { title: { text: 'true' }, autorange: 'reversed', automargin: true },
      height: Math.max(420, 14 * labels.length + 160),
    },
  };
}

/** Line chart of one or more per-step series (loss curves). */
export function curvesFigure(
  series: Record<string, { x: number[]; y: number[] }>,
  title: string,
  xTitle = 'epoch',
): Figure {
  return {
    data: Object.entries(series).map(([name, s]) => ({ type: 'scatter', mode: 'lines+markers', name, x: s.x, y: s.y })),
    layout: { title: { text: title }, xaxis: { title: { text: xTitle } } },
  };
}

/** Correlation heatmap: a diverging scale centred on 0, each cell labelled with its coefficient. */
export function correlationFigure(
  names: readonly string[],
  matrix: readonly (readonly number[])[],
  title: string,
): Figure {
  return {
    data: [
      {
        type: 'heatmap',
        x: names,
        y: names,
        z: matrix,
        zmin: -1,
        zmax: 1,
        colorscale: 'RdBu',
        reversescale: true,
        text: matrix.map((row) => row.map((v) => v.toFixed(2))),
        texttemplate: '%{text}',
        hovertemplate: '%{y} vs %{x}: %{z:.3f}<extra></extra>',
      },
    ],
    layout: { title: { text: title }, xaxis: { automargin: true }, yaxis: { automargin: true, autorange: 'reversed' } },
  };
}

/** Figure builders (pure): data in, plotly figure out. */
import type { Figure } from './html';

/**
 * Grouped bars: share of each label in each split. Many labels (Banking77's 77) turn the chart into
 * horizontal bars with a row per label, so every name stays readable.
 */
export function labelDistributionFigure(
  shares: Record<string, Record<string, number>>,
  title = 'Label share per split',
): Figure {
  const labels = [...new Set(Object.values(shares).flatMap((s) => Object.keys(s)))].sort();
  const splits = Object.keys(shares).length;
  if (labels.length <= 20)
    return {
      data: Object.entries(shares).map(([split, s]) => ({
        type: 'bar',
        name: split,
        x: labels,
        y: labels.map((l) => s[l] ?? 0),
      })),
      layout: {
        title: { text: title },
        barmode: 'group',
        xaxis: { title: { text: 'label' }, automargin: true },
        yaxis: { title: { text: 'share of split' }, tickformat: '.1%' },
      },
    };
  return {
    data: Object.entries(shares).map(([split, s]) => ({
      type: 'bar',
      orientation: 'h',
      name: split,
      y: labels,
      x: labels.map((l) => s[l] ?? 0),
    })),
    layout: {
      title: { text: title },
      barmode: 'group',
      height: Math.max(420, labels.length * Math.max(12, 4 * splits) + 160),
      xaxis: { title: { text: 'share of split' }, tickformat: '.1%', side: 'top' },
      yaxis: { title: { text: 'label' }, automargin: true, autorange: 'reversed', dtick: 1 },
      legend: { orientation: 'h', y: 1.02, yanchor: 'bottom' },
    },
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

/** Sequential scale, white to dark blue: darker means more (ColorBrewer Blues). */
const BLUES: [number, string][] = [
  [0, '#f7fbff'],
  [0.125, '#deebf7'],
  [0.25, '#c6dbef'],
  [0.375, '#9ecae1'],
  [0.5, '#6baed6'],
  [0.625, '#4292c6'],
  [0.75, '#2171b5'],
  [0.875, '#08519c'],
  [1, '#08306b'],
];

/**
 * Confusion matrix heatmap: rows are true labels, columns predictions, colour the row share (darker
 * = more). Each cell shows its count, and up to 20 classes its row percentage too; the height grows
 * with the number of classes so that 77 intents keep one readable row each.
 */
export function confusionMatrixFigure(
  confusion: number[][],
  labels: string[],
  title = 'Confusion matrix (colour: share of the true label; cells: count)',
): Figure {
  const k = labels.length;
  const shares = confusion.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (total ? v / total : 0));
  });
  const few = k <= 20;
  const text = confusion.map((row, r) =>
    row.map((v, c) => (v === 0 ? '' : few ? `${v}<br>${(100 * shares[r]![c]!).toFixed(0)}%` : String(v))),
  );
  const cell = few ? 44 : 16;
  return {
    data: [
      {
        type: 'heatmap',
        z: shares,
        x: labels,
        y: labels,
        colorscale: BLUES,
        zmin: 0,
        zmax: 1,
        xgap: 1,
        ygap: 1,
        text,
        texttemplate: '%{text}',
        textfont: { size: few ? 12 : 8 },
        customdata: confusion,
        hovertemplate: 'true %{y}<br>predicted %{x}<br>%{customdata} examples (%{z:.1%} of the row)<extra></extra>',
        colorbar: { title: { text: 'share of row' }, tickformat: '.0%' },
      },
    ],
    layout: {
      title: { text: title },
      // Many classes: vertical column labels, one per column, in a font that fits the cell.
      xaxis: {
        title: { text: 'predicted label' },
        automargin: true,
        tickangle: few ? -45 : -90,
        dtick: 1,
        tickfont: { size: few ? 12 : 9 },
      },
      yaxis: {
        title: { text: 'true label' },
        autorange: 'reversed',
        automargin: true,
        dtick: 1,
        tickfont: { size: few ? 12 : 10 },
      },
      height: Math.max(480, cell * k + 260),
    },
  };
}

/** Line chart of one or more series over steps or epochs (loss and validation curves). */
export function curvesFigure(
  series: Record<string, { x: number[]; y: number[] }>,
  title: string,
  xTitle: string,
  yTitle: string,
): Figure {
  const many = Object.values(series).some((s) => s.x.length > 50);
  return {
    data: Object.entries(series).map(([name, s]) => ({
      type: 'scatter',
      mode: many ? 'lines' : 'lines+markers',
      name,
      x: s.x,
      y: s.y,
    })),
    layout: { title: { text: title }, xaxis: { title: { text: xTitle } }, yaxis: { title: { text: yTitle } } },
  };
}

/** Precision-recall curve of the positive class, with the positive share as the no-skill line. */
export function precisionRecallFigure(
  pr: { precision: number[]; recall: number[]; threshold: number[] },
  positive: string,
  averagePrecision: number,
  positiveShare: number,
): Figure {
  return {
    data: [
      {
        type: 'scatter',
        mode: 'lines',
        name: `model (AP ${averagePrecision.toFixed(3)})`,
        x: pr.recall,
        y: pr.precision,
        customdata: pr.threshold,
        hovertemplate: 'recall %{x:.2f}<br>precision %{y:.2f}<br>threshold %{customdata:.3f}<extra></extra>',
      },
      {
        type: 'scatter',
        mode: 'lines',
        name: `no skill (${(100 * positiveShare).toFixed(1)}% "${positive}")`,
        x: [0, 1],
        y: [positiveShare, positiveShare],
        line: { dash: 'dash', color: '#999' },
      },
    ],
    layout: {
      title: { text: `Precision-recall, positive class "${positive}"` },
      xaxis: { title: { text: 'recall' }, range: [0, 1.02] },
      yaxis: { title: { text: 'precision' }, range: [0, 1.02] },
    },
  };
}

/** Precision, recall, F1 and the share of examples flagged, as the decision threshold moves. */
export function thresholdFigure(
  rows: readonly { threshold: number; precision: number; recall: number; f1: number; flagged: number }[],
  positive: string,
): Figure {
  const x = rows.map((r) => r.threshold);
  const line = (name: string, y: number[], dash?: string) => ({
    type: 'scatter',
    mode: 'lines+markers',
    name,
    x,
    y,
    ...(dash ? { line: { dash } } : {}),
  });
  return {
    data: [
      line(
        'precision',
        rows.map((r) => r.precision),
      ),
      line(
        'recall',
        rows.map((r) => r.recall),
      ),
      line(
        'F1',
        rows.map((r) => r.f1),
      ),
      line(
        'share flagged',
        rows.map((r) => r.flagged),
        'dot',
      ),
    ],
    layout: {
      title: { text: `Threshold on p("${positive}")` },
      xaxis: { title: { text: `flag when p("${positive}") >= threshold` }, range: [0, 1] },
      yaxis: { title: { text: 'value' }, range: [0, 1.02], tickformat: '.0%' },
    },
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

/**
 * Reliability diagrams side by side (Guo et al. 2017): per confidence bin, the accuracy of the top
 * class against the diagonal of perfect calibration, before and after temperature scaling. Empty bins
 * are left out; the hover text gives each bin's example count.
 */
export function reliabilityFigure(
  diagrams: Record<
    string,
    readonly { lower: number; upper: number; count: number; accuracy: number; confidence: number }[]
  >,
  title = 'Reliability: accuracy vs confidence',
): Figure {
  const names = Object.keys(diagrams);
  const data: Figure['data'] = names.flatMap((name, i) => {
    const bins = diagrams[name]!.filter((b) => b.count > 0);
    const axis = i === 0 ? '' : String(i + 1);
    return [
      {
        type: 'bar',
        name: `${name}: accuracy`,
        x: bins.map((b) => (b.lower + b.upper) / 2),
        y: bins.map((b) => b.accuracy),
        width: bins.map((b) => b.upper - b.lower),
        text: bins.map((b) => `${b.count} examples, mean confidence ${b.confidence.toFixed(3)}`),
        xaxis: `x${axis}`,
        yaxis: `y${axis}`,
      },
      {
        type: 'scatter',
        mode: 'lines',
        name: 'perfect calibration',
        showlegend: i === 0,
        x: [0, 1],
        y: [0, 1],
        line: { dash: 'dash', color: '#888' },
        xaxis: `x${axis}`,
        yaxis: `y${axis}`,
      },
    ];
  });
  const layout: Record<string, unknown> = {
    title: { text: title },
    grid: { rows: 1, columns: names.length, pattern: 'independent' },
    annotations: names.map((name, i) => ({
      text: name,
      showarrow: false,
      xref: `x${i === 0 ? '' : i + 1} domain`,
      yref: `y${i === 0 ? '' : i + 1} domain`,
      x: 0.02,
      y: 0.98,
      xanchor: 'left',
    })),
  };
  names.forEach((_, i) => {
    const axis = i === 0 ? '' : String(i + 1);
    layout[`xaxis${axis}`] = { title: { text: 'confidence (top-class probability)' }, range: [0, 1] };
    layout[`yaxis${axis}`] = { title: { text: 'accuracy' }, range: [0, 1] };
  });
  return { data, layout };
}

/**
 * The daily out-of-scope share of served predictions (bars show each day's volume on a second axis),
 * with the baseline the monitor compares the latest day against and the rise that counts as drift.
 */
export function outOfScopeTrendFigure(
  days: readonly { day: string; rows: number; outOfScope: number }[],
  baseline: number,
  jump: number,
): Figure {
  const x = days.map((d) => d.day);
  const flat = (name: string, y: number, dash: string) => ({
    type: 'scatter',
    mode: 'lines',
    name,
    x,
    y: x.map(() => y),
    line: { dash, width: 1.5 },
  });
  return {
    data: [
      { type: 'bar', name: 'predictions', x, y: days.map((d) => d.rows), yaxis: 'y2', opacity: 0.25 },
      {
        type: 'scatter',
        mode: 'lines+markers',
        name: 'out-of-scope share',
        x,
        y: days.map((d) => d.outOfScope / Math.max(1, d.rows)),
      },
      flat('baseline', baseline, 'dot'),
      flat('drift at', Math.min(1, baseline + jump), 'dash'),
    ],
    layout: {
      title: { text: 'Out-of-scope share per day (UTC)' },
      xaxis: { type: 'category' },
      yaxis: { title: { text: 'share out of scope' }, tickformat: '.0%', rangemode: 'tozero' },
      yaxis2: { title: { text: 'predictions' }, overlaying: 'y', side: 'right', showgrid: false },
      legend: { orientation: 'h' },
    },
  };
}

/**
 * Figures of a tuning study (pure): Optuna's trials in, plotly figures out. The same four views
 * Optuna's own visualisation module draws: optimisation history, intermediate values (pruning),
 * parallel coordinates and parameter importances.
 */
import type { SearchParam } from './space';
import type { StudySummary, TrialRecord } from './optuna';
import type { Figure, ReportSection } from '../plots/html';

const lastIntermediate = (t: TrialRecord): number | undefined => {
  const steps = Object.keys(t.intermediate).map(Number);
  return steps.length ? t.intermediate[String(Math.max(...steps))] : undefined;
};

/** Each finished trial's value by trial number, the best so far as a step line, pruned trials greyed. */
export function optimizationHistoryFigure(trials: readonly TrialRecord[], metric = 'validation macro-F1'): Figure {
  const complete = trials.filter((t) => t.state === 'complete' && t.value !== null);
  const pruned = trials.filter((t) => t.state === 'pruned' && lastIntermediate(t) !== undefined);
  const sorted = [...complete].sort((a, b) => a.number - b.number);
  let best = -Infinity;
  const bestSoFar = sorted.map((t) => (best = Math.max(best, t.value!)));
  return {
    data: [
      {
        type: 'scatter',
        mode: 'markers',
        name: 'complete',
        x: complete.map((t) => t.number),
        y: complete.map((t) => t.value),
        marker: { color: '#1f77b4', size: 8 },
      },
      {
        type: 'scatter',
        mode: 'markers',
        name: 'pruned (last reported)',
        x: pruned.map((t) => t.number),
        y: pruned.map(lastIntermediate),
        marker: { color: '#bbbbbb', size: 7, symbol: 'x' },
      },
      {
        type: 'scatter',
        mode: 'lines',
        name: 'best so far',
        x: sorted.map((t) => t.number),
        y: bestSoFar,
        line: { shape: 'hv', color: '#d62728' },
      },
    ],
    layout: {
      title: { text: 'Optimisation history' },
      xaxis: { title: { text: 'trial' } },
      yaxis: { title: { text: metric } },
    },
  };
}

/** Per-epoch validation score of every trial: where the pruner stopped the weak ones. */
export function intermediateValuesFigure(trials: readonly TrialRecord[]): Figure {
  return {
    data: trials
      .filter((t) => Object.keys(t.intermediate).length)
      .map((t) => {
        const steps = Object.keys(t.intermediate)
          .map(Number)
          .sort((a, b) => a - b);
        return {
          type: 'scatter',
          mode: 'lines',
          name: `#${t.number} ${t.state}`,
          x: steps,
          y: steps.map((s) => t.intermediate[String(s)]),
          line: { color: t.state === 'pruned' ? '#bbbbbb' : undefined, width: t.state === 'pruned' ? 1 : 2 },
        };
      }),
    layout: {
      title: { text: 'Intermediate values (grey: pruned)' },
      xaxis: { title: { text: 'epoch' } },
      yaxis: { title: { text: 'validation macro-F1' } },
      showlegend: false,
    },
  };
}

/** One axis per parameter (log ones in log10, categorical ones as ticks), lines coloured by value. */
export function parallelCoordinatesFigure(trials: readonly TrialRecord[], space: readonly SearchParam[]): Figure {
  const complete = trials.filter((t) => t.state === 'complete' && t.value !== null);
  const dimensions = space.map((p) => {
    const raw = complete.map((t) => t.params[p.name]);
    if (p.type === 'categorical') {
      const labels = p.choices.map(String);
      return {
        label: p.name,
        values: raw.map((v) => labels.indexOf(String(v))),
        tickvals: labels.map((_, i) => i),
        ticktext: labels,
      };
    }
    return p.log
      ? { label: `log10 ${p.name}`, values: raw.map((v) => Math.log10(Number(v))) }
      : { label: p.name, values: raw.map(Number) };
  });
  const values = complete.map((t) => t.value!);
  return {
    data: [
      {
        type: 'parcoords',
        line: { color: values, colorscale: 'Viridis', showscale: true, colorbar: { title: { text: 'value' } } },
        dimensions: [...dimensions, { label: 'objective', values }],
      },
    ],
    layout: { title: { text: 'Parallel coordinates (complete trials)' }, margin: { l: 80, r: 80 } },
  };
}

/** Optuna's fANOVA importances as horizontal bars, most important on top. */
export function importancesFigure(importances: Record<string, number>): Figure {
  const entries = Object.entries(importances).sort((a, b) => a[1] - b[1]);
  return {
    data: [
      {
        type: 'bar',
        orientation: 'h',
        x: entries.map(([, v]) => v),
        y: entries.map(([k]) => k),
        marker: { color: '#1f77b4' },
      },
    ],
    layout: {
      title: { text: 'Parameter importances (fANOVA)' },
      xaxis: { title: { text: 'importance' } },
      margin: { l: 140 },
      height: Math.max(280, 40 * entries.length + 120),
    },
  };
}

/** The study as report sections: best trial, the four figures and the complete trials ranked. */
export function studySections(
  summary: StudySummary,
  space: readonly SearchParam[],
  importances: Record<string, number>,
): ReportSection[] {
  const names = space.map((p) => p.name);
  const ranked = summary.trials
    .filter((t) => t.state === 'complete' && t.value !== null)
    .sort((a, b) => b.value! - a.value!);
  const dflt = summary.trials.find((t) => t.number === 0);
  const c = summary.counts;
  return [
    {
      heading: 'Summary',
      text:
        `${c.complete ?? 0} complete, ${c.pruned ?? 0} pruned, ${c.fail ?? 0} failed. ` +
        (summary.best
          ? `Best: trial #${summary.best.number}, validation macro-F1 ${summary.best.value.toFixed(4)}. `
          : '') +
        (dflt?.value != null ? `Default configuration (trial #0): ${dflt.value.toFixed(4)}.` : ''),
    },
    { heading: 'Optimisation history', figure: optimizationHistoryFigure(summary.trials) },
    { heading: 'Intermediate values', figure: intermediateValuesFigure(summary.trials) },
    { heading: 'Parallel coordinates', figure: parallelCoordinatesFigure(summary.trials, space) },
    ...(Object.keys(importances).length
      ? [{ heading: 'Parameter importances', figure: importancesFigure(importances) }]
      : []),
    {
      heading: 'Complete trials',
      table: {
        columns: ['trial', 'val macro-F1', 'test accuracy', ...names],
        rows: ranked.map((t) => [
          t.number,
          t.value!,
          Number(t.user_attrs.test_accuracy ?? NaN),
          ...names.map((n) => paramText(t.params[n])),
        ]),
      },
    },
  ];
}

/** A parameter value for a table: numbers to 4 significant digits (learning rates run long). */
export const paramText = (v: unknown): string =>
  typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toPrecision(4))) : String(v);

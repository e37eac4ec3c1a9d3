import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { monitoringExpressions, referencedMetrics } from '../helpers/monitoring';

// Monitoring as code: the Prometheus config and alert rules are checked by Prometheus' own promtool,
// and the alerts are unit-tested with synthetic series (monitoring/alerts.test.yml).
const cfg = loadConfig();
const exec = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'monitoring-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function promtool(): string {
  const bin = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => fs.existsSync(p));
  if (!bin)
    throw new Error('promtool not found: `make tools` installs Debian prometheus (as root), or install it yourself');
  return bin;
}

describe('monitoring/ (Prometheus config, alert rules, Grafana dashboard)', () => {
  it('promtool checks the config and the rules, and the alert unit tests pass', async () => {
    // The config reads the serving token relative to itself; check a copy that has one.
    fs.cpSync(path.join(cfg.root, 'monitoring'), path.join(tmp, 'monitoring'), { recursive: true });
    fs.mkdirSync(path.join(tmp, '.cache'));
    fs.writeFileSync(path.join(tmp, '.cache', 'serve-token'), 'token\n');
    const config = await exec(promtool(), ['check', 'config', path.join(tmp, 'monitoring', 'prometheus.yml')]);
    expect(config.stdout).toMatch(/SUCCESS: 7 rules found/);
    const rules = await exec(promtool(), ['check', 'rules', path.join(tmp, 'monitoring', 'alerts.yml')]);
    expect(rules.stdout).toMatch(/SUCCESS/);
    const tests = await exec(promtool(), ['test', 'rules', 'alerts.test.yml'], { cwd: path.join(tmp, 'monitoring') });
    expect(tests.stdout).toMatch(/SUCCESS/);
  });

  it('a broken rule fails the check (the check is not a formality)', async () => {
    const broken = path.join(tmp, 'broken.yml');
    fs.writeFileSync(
      broken,
      fs.readFileSync(path.join(cfg.root, 'monitoring', 'alerts.yml'), 'utf8').replace('> 0.02', '> > 0.02'),
    );
    await expect(exec(promtool(), ['check', 'rules', broken])).rejects.toThrow(/FAILED/);
  });

  it('the Grafana dashboard has the panels people look for, each with a query', () => {
    const dash = JSON.parse(fs.readFileSync(path.join(cfg.root, 'monitoring', 'grafana', 'convo-mlops.json'), 'utf8'));
    expect(dash.uid).toBe('convo-mlops');
    const titles = (dash.panels as { title: string; targets: { expr: string }[] }[]).map((p) => p.title);
    for (const t of [
      /Requests per second/,
      /latency percentiles/,
      /by class and model version/,
      /per model call/,
      /Drift/,
      /Out-of-scope share/,
    ])
      expect(
        titles.some((x) => t.test(x)),
        String(t),
      ).toBe(true);
    for (const p of dash.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
    expect(referencedMetrics(monitoringExpressions())).toEqual(
      new Set([
        'http_requests_total',
        'http_request_duration_seconds',
        'requests_rejected_total',
        'model_version',
        'predictions_total',
        'prediction_batch_size',
        'scoring_queue_depth',
        'model_reloads_total',
        'convo_drift_level',
        'convo_drift_drifted_share',
        'convo_monitor_last_run_timestamp_seconds',
        'out_of_scope_share_today',
        'convo_out_of_scope_share',
      ]),
    );
  });
});

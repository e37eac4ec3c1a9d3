import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { prometheusConfigFor } from '../../src/stack/replicas';

// The team stack's Prometheus runs the project's own monitoring/prometheus.yml, pointed at its replicas.
const dir = path.join(__dirname, '..', '..', 'monitoring');
const base = fs.readFileSync(path.join(dir, 'prometheus.yml'), 'utf8');

describe('prometheusConfigFor', () => {
  it('scrapes the replicas with their token, keeps the rules (absolute) and drops jobs with no target here', () => {
    const doc = YAML.parse(
      prometheusConfigFor(base, dir, {
        targets: ['127.0.0.1:4001', '127.0.0.1:4002'],
        task: 'support-intent',
        tokenFile: '/stack/serve-token',
        scrapeSeconds: 1,
      }),
    ) as {
      global: { scrape_interval: string; evaluation_interval: string };
      rule_files: string[];
      scrape_configs: {
        job_name: string;
        authorization: { type: string; credentials_file: string };
        static_configs: unknown;
      }[];
    };
    expect(doc.scrape_configs.map((j) => j.job_name)).toEqual(['convo-serve']);
    const [serve] = doc.scrape_configs;
    expect(serve!.static_configs).toEqual([
      { targets: ['127.0.0.1:4001', '127.0.0.1:4002'], labels: { task: 'support-intent' } },
    ]);
    expect(serve!.authorization).toEqual({ type: 'Bearer', credentials_file: '/stack/serve-token' });
    expect(doc.rule_files).toEqual([path.join(dir, 'alerts.yml')]);
    expect(doc.global.scrape_interval).toBe('1s');
    // What the base file says stays where nothing overrides it.
    expect(doc.global.evaluation_interval).toBe((YAML.parse(base) as typeof doc).global.evaluation_interval);
  });
});

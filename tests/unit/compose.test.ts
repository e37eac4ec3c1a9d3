import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { mlflowConfigOf, type StackConfig } from '../../src/stack/team-stack';

// docker-compose.yml describes the stack make stack-up runs: same engines, same MLflow flags.
const compose = YAML.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'docker-compose.yml'), 'utf8')) as {
  services: Record<
    string,
    {
      image: string;
      command?: string;
      ports?: string[];
      restart?: string;
      healthcheck?: unknown;
      depends_on?: Record<string, { condition: string }> | string[];
    }
  >;
};

describe('docker-compose.yml', () => {
  it('has the team stack services and starts MLflow as make stack-up does', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['mlflow', 'postgres', 'prometheus', 's3', 'serve']);
    expect(compose.services.postgres!.image).toMatch(/^postgres:15/);
    expect(compose.services.s3!.command).toMatch(/^mini .*-bucket=mlflow/);
    const local = mlflowConfigOf({
      dir: '/tmp/x',
      pgPort: 1,
      mlflowPort: 2,
      bucket: 'mlflow',
      pgPassword: 'p',
    } as StackConfig);
    const cmd = compose.services.mlflow!.command!;
    expect(cmd).toContain(`--app-name ${local.appName}`);
    expect(cmd).toContain(`--artifacts-destination ${local.artifactsDestination}`);
    expect(cmd).toContain('--backend-store-uri postgresql+psycopg2://');
  });

  it('starts the replicas once MLflow answers, restarts what exits, and publishes ports on this machine only', () => {
    const s = compose.services;
    expect(s.mlflow!.healthcheck).toBeDefined();
    expect(s.serve!.depends_on).toEqual({ mlflow: { condition: 'service_healthy' } });
    for (const name of ['mlflow', 'serve', 'prometheus']) expect(s[name]!.restart, name).toBe('unless-stopped');
    for (const [name, svc] of Object.entries(s))
      for (const port of svc.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
  });
});

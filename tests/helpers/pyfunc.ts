import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config';

const cfg = loadConfig();

/**
 * mlflow.pyfunc.load_model(uri).predict(pd.DataFrame(input)) in the project's venv: rows of label and
 * p(<label>). `input` is what pandas takes: {"text": [...]} or a list of records.
 */
export async function pyfuncPredict(
  uri: string,
  input: unknown,
  o: { env: NodeJS.ProcessEnv; cwd: string },
): Promise<Record<string, string | number | boolean>[]> {
  const file = path.join(o.cwd, `pyfunc-input-${process.pid}-${Date.now()}.json`);
  fs.writeFileSync(file, JSON.stringify(input));
  const script = [
    'import json, sys, mlflow, pandas as pd',
    'model = mlflow.pyfunc.load_model(sys.argv[1])',
    'out = model.predict(pd.DataFrame(json.load(open(sys.argv[2]))))',
    'print(out.to_json(orient="records"))',
  ].join('\n');
  try {
    const { stdout } = await promisify(execFile)(path.join(cfg.venv, 'bin', 'python'), ['-c', script, uri, file], {
      env: o.env,
      cwd: o.cwd,
      maxBuffer: 64 << 20,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, string | number | boolean>[];
  } finally {
    fs.rmSync(file, { force: true });
  }
}

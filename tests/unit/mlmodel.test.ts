import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMlmodel, readMlmodel, writeMlmodel } from '../../src/mlflow';

const opts = {
  runId: 'abc123',
  artifactPath: 'model',
  flavors: { ts_bert: { runtime: 'onnxruntime-node', model_file: 'model.onnx' } },
  signature: {
    inputs: [{ name: 'text', type: 'string' as const }],
    outputs: [
      { name: 'label', type: 'string' as const },
      { name: 'score', type: 'double' as const },
    ],
  },
  inputExample: [{ text: 'I want to close my account' }],
  modelUuid: '0b7a6d2c-0000-4000-8000-000000000001',
  now: new Date('2026-11-22T10:00:00.000Z'),
};

describe('MLmodel', () => {
  it('describes flavors, signature (as MLflow column-spec JSON), example, run id and creation time', () => {
    const m = buildMlmodel(opts);
    expect(m).toMatchObject({
      artifact_path: 'model',
      run_id: 'abc123',
      model_uuid: '0b7a6d2c000040008000000000000001',
      utc_time_created: '2026-11-22 10:00:00.000',
      saved_input_example_info: { artifact_path: 'input_example.json', type: 'dataframe', pandas_orient: 'split' },
    });
    const sig = m.signature as { inputs: string; outputs: string };
    expect(JSON.parse(sig.inputs)).toEqual([{ type: 'string', name: 'text', required: true }]);
    expect(JSON.parse(sig.outputs)).toHaveLength(2);
  });

  it('writes YAML that reads back, and the input example in split orientation', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlmodel-'));
    writeMlmodel(dir, opts);
    expect(readMlmodel(dir)).toEqual(JSON.parse(JSON.stringify(buildMlmodel(opts))));
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'input_example.json'), 'utf8'))).toEqual({
      columns: ['text'],
      data: [['I want to close my account']],
    });
  });
});

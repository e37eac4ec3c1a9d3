/**
 * MLflow's python_function flavor for the text kinds and the tabular kind: a model folder also loads
 * in Python (`mlflow.pyfunc.load_model`, `mlflow models serve`) through src/py/convo_pyfunc.py,
 * which runs the same files (TF-IDF weights and token rule, ONNX graphs, the fitted feature transform
 * and its derived-feature expressions, the scope rule's graph) with numpy / onnxruntime. The modules
 * are copied into the folder, so a registered model carries the code that loads it.
 */
import fs from 'node:fs';
import path from 'node:path';

/** What the Python loader needs to know (written as pyfunc.json beside the model's files). */
export type PyfuncSpec =
  | { kind: 'tfidf-logreg'; model_file: string; label_map: string }
  | { kind: 'bert-finetune'; hf: string; onnx: string; max_length: number; label_map: string }
  | {
      kind: 'frozen-encoder-logreg';
      encoder: string;
      onnx: string;
      head: string;
      max_length: number;
      label_map: string;
    }
  | { kind: 'tabular-onnx'; onnx: string; transform: string; label_map: string }
  | {
      kind: 'hybrid-frozen-logreg';
      encoder: string;
      onnx: string;
      head: string;
      transform: string;
      label_map: string;
    };

const MODULE = 'convo_pyfunc';
/** The loader module and the modules it imports, in src/py/. */
const SOURCES = [MODULE, 'convo_features'].map((m) => path.join(__dirname, '..', 'py', `${m}.py`));

// Versions the loader was tested with: the project's own lock (requirements.txt).
const REQUIREMENTS = ['mlflow==3.17.2', 'numpy', 'pandas', 'onnxruntime==1.32.0', 'tokenizers==0.23.3'];

/** Writes the loader, its spec and its environment into `dir`; returns the flavor's MLmodel entry. */
export function addPythonFlavor(dir: string, spec: PyfuncSpec): Record<string, unknown> {
  fs.mkdirSync(path.join(dir, 'code'), { recursive: true });
  for (const source of SOURCES) fs.copyFileSync(source, path.join(dir, 'code', path.basename(source)));
  fs.writeFileSync(path.join(dir, 'pyfunc.json'), `${JSON.stringify(spec, null, 2)}\n`);
  // TF-IDF (numpy) and tabular graphs need no tokenizer; every kind needs ONNX Runtime for scope.onnx.
  const unused = { 'tfidf-logreg': /^tok/, 'tabular-onnx': /^tok/ }[spec.kind as string];
  const requirements = unused ? REQUIREMENTS.filter((r) => !unused.test(r)) : REQUIREMENTS;
  fs.writeFileSync(path.join(dir, 'requirements.txt'), `${requirements.join('\n')}\n`);
  fs.writeFileSync(
    path.join(dir, 'python_env.yaml'),
    `python: "3.11"\nbuild_dependencies:\n  - pip\ndependencies:\n  - -r requirements.txt\n`,
  );
  fs.writeFileSync(
    path.join(dir, 'conda.yaml'),
    `channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n${requirements
      .map((r) => `      - ${r}\n`)
      .join('')}name: mlflow-env\n`,
  );
  return {
    loader_module: MODULE,
    code: 'code',
    data: 'pyfunc.json',
    python_version: '3.11',
    env: { conda: 'conda.yaml', virtualenv: 'python_env.yaml' },
  };
}

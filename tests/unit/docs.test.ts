/**
 * README.md and docs/**.md name only what exists: every `make <target>` is a rule of the Makefile, every
 * environment variable is read by the project (or allow-listed below, with the reason), every repository
 * path in inline code or a link exists or is output that runs create (a path .gitignore declares), and
 * every relative link and anchor resolves. The extraction rules are in tests/helpers/docs-names.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  extractNames,
  gitignoreMatcher,
  githubSlug,
  headingAnchors,
  literalPrefix,
  makefileTargets,
  mentionsWord,
  type DocNames,
} from '../helpers/docs-names';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');
const exists = (p: string) => fs.existsSync(path.join(ROOT, p));

/**
 * Variables the docs may name although no file of this repository reads them: each is read by a
 * third-party tool the docs explain. Keep it short; an entry the code starts reading is reported as stale.
 */
const THIRD_PARTY_ENV: Record<string, string> = {
  AIRFLOW_HOME: "Airflow's own metadata folder; tests/airflow/dags.test.ts points it at a temporary folder",
};

/** Where an environment variable counts as read: the code, the Makefile and the deployment files. */
const ENV_SOURCES = ['src', 'scripts', 'docker', 'monitoring', 'Makefile', 'docker-compose.yml'];

function walk(rel: string): string[] {
  const full = path.join(ROOT, rel);
  if (!fs.existsSync(full)) return [];
  if (!fs.statSync(full).isDirectory()) return [rel];
  return fs
    .readdirSync(full)
    .sort()
    .flatMap((e) => walk(path.join(rel, e)));
}

/** README.md and every markdown page under docs/. */
const DOCS = ['README.md', ...walk('docs').filter((f) => f.endsWith('.md'))];

const gitignore = read('.gitignore');
const generated = gitignoreMatcher(gitignore);
/** Top-level entries a path may start with: what is in the working tree, and folders .gitignore declares. */
const TOP_LEVEL = new Set([
  ...fs.readdirSync(ROOT),
  ...gitignore
    .split('\n')
    .map((l) => l.trim().replace(/^\//, ''))
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('!') && l.includes('/'))
    .map((l) => l.split('/')[0]!)
    .filter((s) => !/[*?[]/.test(s)),
]);

const names: Record<string, DocNames> = Object.fromEntries(
  DOCS.map((f) => [f, extractNames(read(f), TOP_LEVEL, path.dirname(f))]),
);
/** Every mention of one kind, across the files, with the file it is in. */
const all = <K extends keyof DocNames>(key: K): (DocNames[K][number] & { file: string })[] =>
  Object.entries(names).flatMap(([file, n]) => (n[key] as DocNames[K][number][]).map((m) => ({ ...m, file })));
const distinct = (ms: { name: string }[]) => new Set(ms.map((m) => m.name)).size;

const envCorpus = ENV_SOURCES.flatMap(walk)
  .filter((f) => !/\.(md|png|jpg|onnx|f32|bin|safetensors)$/.test(f))
  .map(read)
  .join('\n');

describe('docs-names: the extraction rules on a small sample', () => {
  const sample = [
    '# Title',
    '## Two `make` commands',
    'Run `make demo`, then `make -s stack-env TASK=x` or `eval "$(make -s stack-up)"`; make sure prose is ignored,',
    '```bash',
    'make serve TASK=support-intent SERVE_PORT=8081',
    'MLFLOW_TRACKING_URI=http://x make lab',
    'echo $HF_TOKEN ${OPTUNA_STORAGE}',
    'make baseline TASK=a && make promote   # the make targets, in a comment: not read',
    'scripts/   CLI entry points behind the make targets',
    '```',
    'Set `SCOPE_THRESHOLD` or `MLFLOW_PORT`; not variables: `HEALTHCHECK`, `TPE`, FOO_BAR outside code.',
    'Code in `src/kinds/scope/rule.ts` and `./src/...`; output in `reports/monitor-<task>-<date>.html`.',
    'Not paths: `epoch/val_loss`, `models:/x@champion`, `a src/b`, `src`.',
    'See [serving](serving.md#routes), [up](../README.md), [web](https://example.com), [here](#two-make-commands),',
    'and `[not a link](nowhere.md)` in code.',
  ].join('\n');
  const n = extractNames(sample, new Set(['src', 'reports', 'docs', 'README.md']), 'docs');

  it('finds make targets in code only, after flags and variables', () => {
    expect(n.makeTargets.map((m) => m.name)).toEqual([
      'demo',
      'stack-env',
      'stack-up',
      'serve',
      'lab',
      'baseline',
      'promote',
    ]);
    expect(n.makeTargets.find((m) => m.name === 'serve')?.line).toBe(5);
  });

  it('finds assignments, $NAME and lone UPPER_CASE spans as variables', () => {
    expect(n.envVars.map((m) => m.name).sort()).toEqual(
      [
        'HF_TOKEN',
        'MLFLOW_PORT',
        'MLFLOW_TRACKING_URI',
        'OPTUNA_STORAGE',
        'SCOPE_THRESHOLD',
        'SERVE_PORT',
        'TASK',
        'TASK',
        'TASK',
      ].sort(),
    );
  });

  it('finds repository paths in code spans, and resolves links from the page folder', () => {
    expect(n.codePaths.map((m) => m.name)).toEqual([
      'src/kinds/scope/rule.ts',
      'src/...',
      'reports/monitor-<task>-<date>.html',
    ]);
    expect(n.links).toEqual([
      { name: 'docs/serving.md', anchor: 'routes', line: 14 },
      { name: 'README.md', line: 14 },
    ]);
    expect(n.localAnchors.map((m) => m.name)).toEqual(['two-make-commands']);
    expect(headingAnchors(sample).has('two-make-commands')).toBe(true);
  });

  it('reads Makefile rules, .gitignore patterns, placeholders and anchors', () => {
    const mk = [
      'SHELL := /bin/bash',
      '.PHONY: help demo',
      'export X ?= http://h:$(P)',
      'help: ## list',
      'demo: setup mlflow-up ## first',
      '\t@echo hi: there',
      '$(STAMPS)/venv: requirements.txt',
      'retrain retrain-all: x',
      'CRON_MARK := \\# x',
    ].join('\n');
    expect([...makefileTargets(mk)].sort()).toEqual(['demo', 'help', 'retrain', 'retrain-all']);

    const ignored = gitignoreMatcher(
      '# c\ndata/processed/\nreports/\nmlflow/mlflow.db\n*.tsbuildinfo\nnode_modules/\n',
    );
    expect(ignored('data/processed/support-intent/quarantine.jsonl')).toBe(true);
    expect(ignored('data/processed')).toBe(true);
    expect(ignored('mlflow/mlflow.db')).toBe(true);
    expect(ignored('a/b.tsbuildinfo')).toBe(true);
    expect(ignored('a/node_modules/b')).toBe(true);
    expect(ignored('data/eval/off-topic.txt')).toBe(false);
    expect(ignored('mlflow/README.md')).toBe(false);

    expect(literalPrefix('data/incoming/<task>/*.csv|jsonl')).toEqual({ prefix: 'data/incoming', pattern: true });
    expect(literalPrefix('src/io/files.ts')).toEqual({ prefix: 'src/io/files.ts', pattern: false });
    expect(githubSlug('Calibrated confidence and "none of my classes"')).toBe(
      'calibrated-confidence-and-none-of-my-classes',
    );
    expect(githubSlug('The BERT engine: `make bench`')).toBe('the-bert-engine-make-bench');
    expect(mentionsWord('process.env.SERVE_TOKENS ?? x', 'SERVE_TOKEN')).toBe(false);
    expect(mentionsWord('env.MALLOC_MMAP_THRESHOLD_)', 'MALLOC_MMAP_THRESHOLD_')).toBe(true);
  });
});

describe('README.md and docs/ name only what exists', () => {
  it('read enough names to mean something', () => {
    expect(DOCS.length).toBeGreaterThanOrEqual(14);
    const readme = names['README.md']!;
    expect(distinct(readme.makeTargets)).toBeGreaterThanOrEqual(12);
    expect(distinct(readme.codePaths)).toBeGreaterThanOrEqual(12);
    expect(distinct(readme.links)).toBeGreaterThanOrEqual(12);
    expect(distinct(readme.envVars)).toBeGreaterThanOrEqual(3);
    expect(distinct(all('makeTargets'))).toBeGreaterThanOrEqual(55);
    expect(distinct(all('codePaths'))).toBeGreaterThanOrEqual(150);
    expect(distinct(all('envVars'))).toBeGreaterThanOrEqual(50);
    expect(distinct(all('links'))).toBeGreaterThanOrEqual(14);
  });

  it('README.md stays one screen plus a map (at most 200 lines)', () => {
    expect(read('README.md').trimEnd().split('\n').length).toBeLessThanOrEqual(200);
  });

  it('every `make <target>` is a rule of the Makefile', () => {
    const targets = makefileTargets(read('Makefile'));
    const missing = all('makeTargets')
      .filter((m) => !targets.has(m.name))
      .map((m) => `${m.file}:${m.line} make ${m.name}`);
    expect(missing).toEqual([]);
  });

  it('every environment variable is read by the project, or allow-listed with a reason', () => {
    const unread = all('envVars')
      .filter((m) => !THIRD_PARTY_ENV[m.name] && !mentionsWord(envCorpus, m.name))
      .map((m) => `${m.file}:${m.line} ${m.name} (not in ${ENV_SOURCES.join(', ')})`);
    expect(unread).toEqual([]);
  });

  it('the allow-list holds only names the docs use and the code does not read', () => {
    const used = new Set(all('envVars').map((m) => m.name));
    const stale = Object.keys(THIRD_PARTY_ENV).filter((v) => !used.has(v) || mentionsWord(envCorpus, v));
    expect(stale).toEqual([]);
  });

  it('every repository path exists, or is output that runs create (declared in .gitignore)', () => {
    const missing = [...all('codePaths'), ...all('links')]
      .filter((m) => {
        const { prefix, pattern } = literalPrefix(m.name);
        if (exists(prefix) && (!pattern || fs.statSync(path.join(ROOT, prefix)).isDirectory())) return false;
        return !generated(pattern ? prefix : m.name);
      })
      .map((m) => `${m.file}:${m.line} ${m.name}`);
    expect(missing).toEqual([]);
  });

  it('every link anchor names a heading of its page', () => {
    const broken = [
      ...all('links')
        .filter((m) => m.anchor && m.name.endsWith('.md') && exists(m.name))
        .filter((m) => !headingAnchors(read(m.name)).has(m.anchor!))
        .map((m) => `${m.file}:${m.line} ${m.name}#${m.anchor}`),
      ...all('localAnchors')
        .filter((m) => !headingAnchors(read(m.file)).has(m.name))
        .map((m) => `${m.file}:${m.line} #${m.name}`),
    ];
    expect(broken).toEqual([]);
  });
});

/**
 * make promote / make promote-check.
 *   promote export      notebooks' `//| export` cells -> src/ modules (deterministic; unchanged files untouched)
 *   promote check       fail, naming notebook and cell, when src/ and the notebooks disagree
 *   promote register    RUN=<id> or METRIC=<name> TASK=<task>: registry version + @challenger + config/production/<task>.json
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { checkExports, notebooksWithOutputs, syncBack, type Notebook } from '../src/export/export';
import { exportsOf, generatedFiles, readNotebooks, writeExports } from '../src/export/notebooks';
import { chooseRun, registerRun } from '../src/production/register';
import { exportsDigest } from '../src/export/provenance';
import { productionConfigFile, writeProductionConfig } from '../src/production/config';
import { productionLockFile, withLock } from '../src/production/lock';
import { MlflowClient } from '../src/mlflow';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
// PROMOTE_ROOT: export/check another checkout (tests use a copy of the project).
const root = path.resolve(process.env.PROMOTE_ROOT ?? cfg.root);
const program = new Command('promote').description(
  'Turn notebook cells into src/ modules, and a run into the registered model the production loop uses.',
);

program
  .command('export')
  .description('write every `//| export` cell of notebooks/*.ipynb into its src/ module')
  .action(() =>
    runMain(async () => {
      const modules = exportsOf(root);
      const written = writeExports(root, modules);
      for (const m of modules)
        log(
          `${written.includes(m.target) ? 'wrote    ' : 'unchanged'} ${m.target}  <- ${m.notebook} (${m.cells.length} cells)`,
        );
    }),
  );

program
  .command('update')
  .description(
    'sync-back: take hand edits of generated src/ modules into the notebook cells they came from (by their // cell markers); refuses on conflicts',
  )
  .action(() =>
    runMain(async () => {
      const current = readNotebooks(root);
      const modules = generatedFiles(root).map((t) => ({
        target: t,
        content: fs.readFileSync(path.join(root, t), 'utf8'),
      }));
      // The notebooks as last committed tell a module edit from a notebook edit.
      const base = current.flatMap((nb) => {
        try {
          const text = execFileSync('git', ['show', `HEAD:${nb.path}`], {
            cwd: root,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          return [{ path: nb.path, notebook: JSON.parse(text) as Notebook }];
        } catch {
          return [];
        }
      });
      const r = syncBack(current, modules, base);
      for (const c of r.conflicts) process.stderr.write(`sync-back: ${c.message}\n`);
      for (const nb of r.notebooks)
        fs.writeFileSync(path.join(root, nb.path), `${JSON.stringify(nb.notebook, null, 1)}\n`);
      for (const u of r.updated) log(`updated  ${u.notebook} cell ${u.cellId}  <- ${u.target}`);
      if (r.updated.length === 0 && r.conflicts.length === 0) log('sync-back: no hand edits in the generated modules');
      if (r.conflicts.length) process.exitCode = 1;
    }),
  );

program
  .command('check')
  .description('exit 1 when a generated module differs from what its notebook exports (names the cell)')
  .action(() =>
    runMain(async () => {
      const modules = exportsOf(root);
      const withOutputs = notebooksWithOutputs(readNotebooks(root));
      for (const nb of withOutputs)
        process.stderr.write(
          `promote-check: ${nb} has outputs; notebooks are committed stripped (make strip-notebooks)\n`,
        );
      const problems = checkExports(
        modules,
        (t) => (fs.existsSync(path.join(root, t)) ? fs.readFileSync(path.join(root, t), 'utf8') : undefined),
        generatedFiles(root),
      );
      if (problems.length === 0 && withOutputs.length === 0) {
        log(`promote-check: ${modules.length} generated module(s) in sync with their notebooks`);
        return;
      }
      for (const p of problems) process.stderr.write(`promote-check: ${p.message}\n`);
      if (problems.length)
        process.stderr.write('Fix: edit the notebook cell (not the generated file), then run `make promote`.\n');
      process.exitCode = 1;
    }),
  );

program
  .command('register')
  .description(
    "register a run's model as a new version of the task's model, set @challenger, write config/production/<task>.json",
  )
  .option('--run <id>', 'the run to promote')
  .option('--metric <name>', 'promote the FINISHED run with the highest value of this metric')
  .option('--task <name>', "task = experiment = registered model name (default: the run's experiment)")
  .option('--alias <alias>', 'alias to set', 'challenger')
  .option('--force', "register even when the run's exported notebook code differs from the working tree's (FORCE=1)")
  .option('--config <file>', 'where to write the production config (default: config/production/<task>.json)')
  .option(
    '--state-dir <dir>',
    'where the production lock lives (shared with make retrain and make rollback)',
    cfg.paths.productionState,
  )
  .action(
    (opts: {
      run?: string;
      metric?: string;
      task?: string;
      alias: string;
      config?: string;
      stateDir: string;
      force?: boolean;
    }) =>
      runMain(async () => {
        const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
        try {
          let task = opts.task;
          if (!task && opts.run)
            task = (await client.getExperiment((await client.getRun(opts.run)).info.experiment_id)).name;
          if (!task) throw new Error('Give TASK=<task> with METRIC=..., or RUN=<run id>.');
          const run = await chooseRun(client, { task, runId: opts.run, metric: opts.metric });
          let gitCommit: string | undefined;
          try {
            gitCommit = execFileSync('git', ['rev-parse', 'HEAD'], {
              cwd: cfg.root,
              encoding: 'utf8',
              stdio: ['ignore', 'pipe', 'ignore'],
            }).trim();
          } catch {
            gitCommit = undefined;
          }
          const file = opts.config ?? productionConfigFile(cfg.paths.productionConfigs, task);
          const t = task;
          await withLock(productionLockFile(path.resolve(opts.stateDir), t), 'promote', async () => {
            const { version, config } = await registerRun(client, run, {
              task: t,
              alias: opts.alias,
              gitCommit,
              metric: opts.metric,
              currentExports: exportsDigest(exportsOf(cfg.root)),
              force: opts.force,
            });
            writeProductionConfig(file, config);
            log(
              `registered run ${run.info.run_id} (${run.info.run_name ?? ''}, ${config.kind}) as ${t} version ${version.version}; models:/${t}@${opts.alias} -> ${version.version}`,
            );
            log(`wrote ${path.relative(cfg.root, file)}`);
          });
        } finally {
          await client.close();
        }
      }),
  );

program.parse();

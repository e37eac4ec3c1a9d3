/**
 * make mlflow-up / mlflow-down / mlflow-status / mlflow-ui: the project's local MLflow tracking server.
 */
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { MlflowClient } from '../src/mlflow';
import { serverFiles, serverStatus, startServer, stopServer } from '../src/mlflow/server';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const mlflowBin = path.join(cfg.venv, 'bin', 'mlflow');
const program = new Command('mlflow')
  .description(
    "Run the project's MLflow tracking server (SQLite backend under mlflow/, artifacts proxied by the server).",
  )
  .showHelpAfterError();

program
  .command('up')
  .description('start the server in the background and wait for /health (does nothing if it already runs)')
  .action(() =>
    runMain(async () => {
      const r = await startServer(cfg.mlflow, { mlflowBin });
      const { logFile } = serverFiles(cfg.mlflow);
      if (r.alreadyRunning) log(`MLflow server already running (pid ${r.pid}): ${r.url}`);
      else
        log(
          `MLflow server started in ${(r.startupMs / 1000).toFixed(1)}s (pid ${r.pid}, log ${path.relative(cfg.root, logFile)})`,
        );
      log(`  backend:   ${cfg.mlflow.backendStoreUri}`);
      log(`  artifacts: ${cfg.mlflow.artifactsDestination} (proxied: mlflow-artifacts:/)`);
      log(`  UI:        ${r.url}`);
    }),
  );

program
  .command('down')
  .description('stop the server and every process it started')
  .action(() =>
    runMain(async () => {
      log((await stopServer(cfg.mlflow)) ? 'MLflow server stopped.' : 'MLflow server was not running.');
    }),
  );

program
  .command('status')
  .description('print whether the server runs and answers /health; exit code 3 when it does not')
  .action(() =>
    runMain(async () => {
      const s = await serverStatus(cfg.mlflow);
      log(
        s.running
          ? `running (pid ${s.pid}), ${s.healthy ? 'healthy' : 'NOT answering /health'}: ${s.url}`
          : 'not running',
      );
      if (!s.healthy) process.exitCode = 3;
    }),
  );

program
  .command('ui')
  .description('make sure the server runs and print the address of its UI')
  .action(() =>
    runMain(async () => {
      const r = await startServer(cfg.mlflow, { mlflowBin });
      log(`MLflow UI: ${r.url}  (experiments, runs, models; stop with \`make mlflow-down\`)`);
      // Direct links to each experiment's runs table (the model-training view), data experiments last.
      const client = MlflowClient.fromEnv({ trackingUri: r.url, journalDir: cfg.paths.journal });
      const exps = (await client.searchExperiments().catch(() => [])).filter((e) => e.name !== 'Default');
      await client.close();
      const rank = (name: string) => (name.endsWith('-data') ? 1 : 0);
      for (const e of exps.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name)))
        log(`  ${e.name.padEnd(28)} ${r.url}/#/experiments/${e.experiment_id}/runs`);
      log(`  registered models            ${r.url}/#/models`);
    }),
  );

program
  .command('replay')
  .description("send every run's journaled metrics/params/tags (kept while the server was unreachable) in order")
  .action(() =>
    runMain(async () => {
      const client = MlflowClient.fromEnv({ trackingUri: cfg.mlflow.trackingUri, journalDir: cfg.paths.journal });
      const runs = await client.replayAll();
      log(
        runs.length
          ? `replayed the journal of ${runs.length} run(s): ${runs.join(', ')}`
          : 'journal empty: nothing to replay',
      );
      await client.close();
    }),
  );

program.parse();

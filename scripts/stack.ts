/**
 * make stack-up / stack-down / stack-status: the team stack on one machine (PostgreSQL backend store,
 * SeaweedFS S3 artifacts, MLflow with basic-auth). `env` prints the client settings to `eval`.
 */
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { stackConfig, stackDown, stackEnv, stackHealthy, stackUp } from '../src/stack/team-stack';
import { servingOf, startServing, stopServing } from '../src/stack/replicas';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const defaultDir = path.join(cfg.root, '.cache', 'stack');

const program = new Command()
  .name('stack')
  .description('PostgreSQL + SeaweedFS (S3) + MLflow with basic-auth, on this machine')
  .option('--dir <dir>', 'state folder (data, logs, generated credentials)', defaultDir);

program
  .command('up')
  .description('start the stack (or find it running) and print how clients reach it')
  .option('--port <port>', 'MLflow port on first start (default: a free one)', (v) => Number.parseInt(v, 10))
  .option('--task <task>', 'also serve this task: model-server replicas following its @champion, and Prometheus')
  .option('--model <name>', 'registered model the replicas serve (default: the task)')
  .option('--replicas <n>', 'model-server replicas (with --task)', (v) => Number.parseInt(v, 10), 2)
  .option('--watch <seconds>', "how often each replica checks @champion's version", (v) => Number.parseFloat(v), 15)
  .action((opts: { port?: number; task?: string; model?: string; replicas: number; watch: number }) =>
    runMain(async () => {
      const stack = await stackConfig(program.opts<{ dir: string }>().dir, { mlflow: opts.port });
      const up = await stackUp(stack, cfg.venv);
      const s = up.startupMs;
      log(
        `==> stack up: MLflow ${up.trackingUri} (PostgreSQL :${stack.pgPort} ${(s.postgres / 1000).toFixed(1)} s, ` +
          `S3 :${stack.s3Port} bucket ${stack.bucket} ${(s.s3 / 1000).toFixed(1)} s, MLflow ${(s.mlflow / 1000).toFixed(1)} s)`,
      );
      log(
        `    clients: eval "$(make -s stack-env)"   (user ${stack.admin.username}; credentials in ${stack.dir}/stack.json)`,
      );
      if (opts.task) {
        const serving = await startServing(stack, {
          task: opts.task,
          model: opts.model,
          replicas: opts.replicas,
          watchSeconds: opts.watch,
          root: cfg.root,
        });
        log(
          `==> ${serving.replicas.length} replicas of ${serving.model}@champion: ${serving.replicas.map((r) => r.url).join(' ')}`,
        );
        log(`    bearer token in ${serving.tokenFile}; Prometheus ${serving.prometheus.url} (targets, alerts)`);
      }
    }),
  );

program
  .command('down')
  .description('stop MLflow, SeaweedFS and PostgreSQL (data stays in the state folder)')
  .action(() =>
    runMain(async () => {
      const stack = await stackConfig(program.opts<{ dir: string }>().dir);
      await stopServing(stack);
      await stackDown(stack);
      log('==> stack down');
    }),
  );

program
  .command('status')
  .description('is the stack up?')
  .action(() =>
    runMain(async () => {
      const stack = await stackConfig(program.opts<{ dir: string }>().dir);
      const ok = await stackHealthy(stack);
      log(ok ? `stack up: MLflow http://127.0.0.1:${stack.mlflowPort}` : 'stack not running');
      const serving = servingOf(stack);
      if (ok && serving)
        log(
          `serving ${serving.model}: ${serving.replicas.map((r) => r.url).join(' ')}; Prometheus ${serving.prometheus.url}`,
        );
      if (!ok) process.exitCode = 3;
    }),
  );

program
  .command('env')
  .description('print `export` lines for a client of the stack')
  .action(() =>
    runMain(async () => {
      const env = stackEnv(await stackConfig(program.opts<{ dir: string }>().dir)).client;
      for (const [k, v] of Object.entries(env)) process.stdout.write(`export ${k}=${v}\n`);
    }),
  );

program.parse();

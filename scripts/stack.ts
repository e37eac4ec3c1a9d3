/**
 * make stack-up / stack-down / stack-status: the team stack on one machine (PostgreSQL backend store,
 * SeaweedFS S3 artifacts, MLflow with basic-auth). `env` prints the client settings to `eval`.
 */
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { stackConfig, stackDown, stackEnv, stackHealthy, stackUp } from '../src/stack/team-stack';
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
  .action((opts: { port?: number }) =>
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
    }),
  );

program
  .command('down')
  .description('stop MLflow, SeaweedFS and PostgreSQL (data stays in the state folder)')
  .action(() =>
    runMain(async () => {
      await stackDown(await stackConfig(program.opts<{ dir: string }>().dir));
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

/**
 * make stack-up / stack-down / stack-status: the team stack on one machine (PostgreSQL backend store,
 * SeaweedFS S3 artifacts, MLflow with basic-auth). `env` prints the client settings to `eval`. `run` starts
 * a stack for one command (make test-stack) and takes it down however the command ends.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
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
  .command('run')
  .description(
    'start the stack, run a command with its client environment, and take the stack down however the command ends ' +
      "(exit, error, SIGINT, SIGTERM, SIGHUP); exits with the command's code",
  )
  .argument('<command...>', 'the command and its arguments (after --)')
  .option('--remove-dir', 'also delete the state folder after the stack is down (a throwaway stack)')
  .action((command: string[], opts: { removeDir?: boolean }) =>
    runMain(async () => {
      const stack = await stackConfig(program.opts<{ dir: string }>().dir);
      let stopped: Promise<void> | undefined;
      // Once, whoever asks first: the signal handler or the command's end. Detached services (their own
      // process groups) never see a signal sent to ours, so nothing else stops them.
      const down = () =>
        (stopped ??= (async () => {
          await stopServing(stack).catch(() => {});
          await stackDown(stack);
          if (opts.removeDir) fs.rmSync(stack.dir, { recursive: true, force: true });
          log('==> stack down');
        })());
      let child: ReturnType<typeof spawn> | undefined;
      const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
      for (const sig of signals)
        process.on(sig, () => {
          log(`==> ${sig}: stopping the command, then the stack`);
          if (child && child.exitCode === null) child.kill(sig);
          else void down().finally(() => process.exit(128 + 15));
        });
      let code = 1;
      try {
        const up = await stackUp(stack, cfg.venv);
        log(`==> stack up for one command: MLflow ${up.trackingUri} (state in ${stack.dir})`);
        child = spawn(command[0]!, command.slice(1), {
          stdio: 'inherit',
          env: { ...process.env, ...stackEnv(stack).client },
        });
        code = await new Promise<number>((resolve) => {
          child!.on('error', (err) => {
            log(`cannot run ${command[0]}: ${err.message}`);
            resolve(127);
          });
          child!.on('close', (c, sig) => resolve(c ?? 128 + (sig === 'SIGINT' ? 2 : 15)));
        });
      } finally {
        await down();
      }
      process.exitCode = code;
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

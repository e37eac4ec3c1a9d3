/**
 * make label-studio-up / label-studio-down / label-studio-status: Label Studio on 127.0.0.1 for the review
 * queue (make review FORMAT=label-studio), from its own venv, with its state under data/label-studio/.
 */
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import {
  LABEL_STUDIO_USER,
  labelStudioFiles,
  labelStudioStatus,
  startLabelStudio,
  stopLabelStudio,
} from '../src/feedback/label-studio-server';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const ls = cfg.labelStudio;
const program = new Command('label-studio')
  .description('Label Studio for the review queue: its own venv, 127.0.0.1 only, state under data/label-studio/.')
  .showHelpAfterError();

program
  .command('up')
  .description('start it in the background and wait until it answers (does nothing if it already runs)')
  .action(() =>
    runMain(async () => {
      const r = await startLabelStudio(ls);
      const files = labelStudioFiles(ls);
      if (r.alreadyRunning) log(`Label Studio already running (pid ${r.pid}): ${r.url}`);
      else
        log(
          `Label Studio started in ${(r.startupMs / 1000).toFixed(1)}s (pid ${r.pid}, log ${path.relative(cfg.root, files.logFile)})`,
        );
      log(
        `  UI:       ${r.url} (user ${LABEL_STUDIO_USER}, password in ${path.relative(cfg.root, files.passwordFile)})`,
      );
      log(`  API token ${path.relative(cfg.root, files.tokenFile)} (Authorization: Token ...)`);
    }),
  );

program
  .command('down')
  .description('stop it and every process it started')
  .action(() =>
    runMain(async () => {
      log((await stopLabelStudio(ls)) ? 'Label Studio stopped' : 'Label Studio was not running');
    }),
  );

program
  .command('status')
  .description('is it running and answering')
  .action(() =>
    runMain(async () => {
      const s = await labelStudioStatus(ls);
      log(
        s.running
          ? `Label Studio running (pid ${s.pid}), ${s.healthy ? 'healthy' : 'not answering'}: ${s.url}`
          : 'Label Studio is not running',
      );
      if (s.running && !s.healthy) process.exitCode = 1;
    }),
  );

program.parse();

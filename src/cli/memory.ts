/**
 * Memory settings for long-running processes that load and release large native models (the model
 * server's hot swaps). Two things keep the resident size flat across swaps:
 * - glibc's malloc returns a freed block to the OS only when it was mmap-ed, and after such a block
 *   is freed it raises its mmap threshold (up to 32 MB), so ONNX Runtime's buffers from the next
 *   session come from the heap and stay there after release. A fixed threshold, which glibc reads
 *   from MALLOC_MMAP_THRESHOLD_ at start-up only, keeps large blocks mmap-ed: the process re-executes
 *   itself once with it set.
 * - the JavaScript objects of a released model (tokenizer, tensors, buffers) are collected right
 *   after the release instead of at V8's next major collection.
 */
import { spawn } from 'node:child_process';
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';

const THRESHOLD = String(128 * 1024);
const PARENT = 'CONVO_MLOPS_PARENT_PID';

/**
 * On Linux, when the threshold is not set yet, runs this same command again with it set and
 * returns true (the caller must do nothing else: this process only relays signals and the exit
 * code). Returns false in the process that should do the work.
 */
export function reexecWithMallocSettings(): boolean {
  if (process.platform !== 'linux') return false;
  if (process.env.MALLOC_MMAP_THRESHOLD_) {
    const parent = Number(process.env[PARENT]);
    // The relay was killed (SIGKILL cannot be relayed): do not outlive it.
    if (parent)
      setInterval(() => {
        try {
          process.kill(parent, 0);
        } catch {
          process.exit(1);
        }
      }, 1000).unref();
    return false;
  }
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: THRESHOLD, [PARENT]: String(process.pid) },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
  return true;
}

/** A function that runs a full garbage collection (enables V8's gc() for this process). */
export function fullGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => gc();
}

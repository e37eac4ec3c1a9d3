/** Small terminal helpers shared by the command-line scripts. */
export const log = (msg: string): void => {
  process.stdout.write(`${msg}\n`);
};

/** Runs a CLI main function: prints a clean error (no stack unless DEBUG) and sets the exit code. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`error: ${process.env.DEBUG ? e.stack : e.message}\n`);
    process.exitCode = 1;
  });
}

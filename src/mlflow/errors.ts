/** Typed errors of the MLflow client. */

/** Bad input caught before any request is sent; `field` names what to fix. */
export class MlflowValidationError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'MlflowValidationError';
  }
}

/** The server answered with an error; carries MLflow's `error_code` (e.g. RESOURCE_DOES_NOT_EXIST). */
export class MlflowApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    readonly endpoint: string,
    message: string,
  ) {
    super(`${endpoint} -> HTTP ${status} ${errorCode}: ${message}`);
    this.name = 'MlflowApiError';
  }

  /** 429 and 5xx are worth retrying; 4xx are the caller's to fix. */
  get retryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

/** The server could not be reached (connection refused, reset, timeout) after every retry. */
export class MlflowUnavailableError extends Error {
  constructor(
    readonly endpoint: string,
    override readonly cause: unknown,
  ) {
    super(`MLflow server unreachable at ${endpoint}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'MlflowUnavailableError';
  }
}

/** True when an error means "try again later" (so logged data goes to the journal, not the bin). */
export function isTransient(err: unknown): boolean {
  return err instanceof MlflowUnavailableError || (err instanceof MlflowApiError && err.retryable);
}

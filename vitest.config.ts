import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Projects: fast pure unit tests, integration tests that run real services
// (an `mlflow server` started on a free port by tests/integration/global-setup.ts, Jupyter, pip), and the team
// stack tests (tests/stack/global-setup.ts), and the container-image tests (tests/image, make image-test).
// serve-memory's bar is resident memory over 50 swaps, which another process's CPU does not move: it runs in parallel.
const TIMED = [
  'tests/integration/serve.test.ts',
  'tests/integration/serve-swap.test.ts',
  'tests/integration/mlflow-outage.test.ts',
];

// On two workers the run ends when the worker with the most work left ends: the longest files go first (measured on
// 2 cores), the rest in vitest's own order (cached durations, else size). A fresh clone has no cache to go by.
const LONGEST_FIRST = [
  'tests/integration/notebooks.test.ts',
  'tests/integration/tune.test.ts',
  'tests/integration/pyfunc.test.ts',
  'tests/integration/tabular-loop.test.ts',
  'tests/integration/serve-memory.test.ts',
  'tests/integration/finetune.test.ts',
  'tests/integration/review.test.ts',
  // Mostly waiting for MLflow servers to start and stop: early, beside the work of the other worker, not at the end.
  'tests/integration/mlflow-journal.test.ts',
  'tests/integration/mlflow-server.test.ts',
  'tests/integration/hybrid.test.ts',
];
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((p) => f.moduleId.endsWith(p));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return [...(await super.sort(files))].sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    reporters: ['default'],
    sequence: { sequencer: LongestFirst },
    // Integration files share one real server; on 2 cores, files run one after another.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          exclude: TIMED,
          globalSetup: ['tests/integration/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 180_000,
        },
      },
      {
        // Files whose bars are times (a /health answer under 100 ms while scoring, a start within 10 s, overload):
        // make test runs them alone, after everything else.
        test: {
          name: 'integration-timed',
          include: TIMED,
          globalSetup: ['tests/integration/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 180_000,
        },
      },
      {
        // The team stack (PostgreSQL + SeaweedFS S3 + MLflow basic-auth), started by its own global setup.
        test: {
          name: 'stack',
          include: ['tests/stack/**/*.test.ts'],
          globalSetup: ['tests/stack/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 240_000,
        },
      },
      {
        // Container images built and run by a private dockerd (make image-test), against the integration setup's MLflow.
        test: {
          name: 'image',
          include: ['tests/image/**/*.test.ts'],
          globalSetup: ['tests/integration/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 1_200_000,
        },
      },
      {
        // make airflow-test: the DAGs of scripts/airflow run by real Airflow (.cache/airflow-venv), against the
        // integration setup's MLflow; not part of make test (Airflow is installed by make airflow-venv only).
        test: {
          name: 'airflow',
          include: ['tests/airflow/**/*.test.ts'],
          globalSetup: ['tests/integration/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});

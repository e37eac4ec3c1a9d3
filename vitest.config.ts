import { defineConfig } from 'vitest/config';

// Projects: fast pure unit tests, integration tests that run real services
// (an `mlflow server` started on a free port by tests/integration/global-setup.ts, Jupyter, pip), and the team
// stack tests (tests/stack/global-setup.ts), and the container-image tests (tests/image, make image-test).
// serve-memory's bar is resident memory over 50 swaps, which another process's CPU does not move: it runs in parallel.
const TIMED = [
  'tests/integration/serve.test.ts',
  'tests/integration/serve-swap.test.ts',
  'tests/integration/mlflow-outage.test.ts',
];

export default defineConfig({
  test: {
    reporters: ['default'],
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

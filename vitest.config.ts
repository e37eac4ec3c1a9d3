import { defineConfig } from 'vitest/config';

// Two projects: fast pure unit tests, and integration tests that run real services
// (an `mlflow server` started on a free port by tests/integration/global-setup.ts, Jupyter, pip).
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
          globalSetup: ['tests/integration/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});

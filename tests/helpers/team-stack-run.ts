/**
 * True while `make test-stack` runs the MLflow-facing integration files a second time, against the team
 * stack (PostgreSQL + S3 + basic-auth). That run is for what the backend changes: the tracking, artifact,
 * registry and auth paths. A case whose extra work (another model kind, a notebook copy, a BERT
 * fine-tune) the local run already covers, through the same client code, is skipped there with `skipIf`.
 */
export const onTeamStack = Boolean(process.env.MLFLOW_TEST_STACK_DIR);

import { loadConfig } from '../../src/config';
import { OptunaStudy, type StudySummary } from '../../src/tune/optuna';
import { TFIDF_TUNING } from '../../src/tune/spaces';

/** A study's trials as Optuna stores them, read through the project's bridge. */
export async function studySummary(storage: string, study: string): Promise<StudySummary> {
  const { study: s, summary } = await OptunaStudy.open({
    python: loadConfig().python,
    storage,
    study,
    space: TFIDF_TUNING.space,
  });
  s.close();
  return summary;
}

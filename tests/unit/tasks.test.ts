import { describe, expect, it } from 'vitest';
import taskNames from '../../src/data/task-names.json';
import { TABULAR_TASK_NAMES } from '../../src/data/tabular-tasks';
import {
  BANKING77_COARSE,
  TASK_NAMES,
  BANKING77_INTENTS,
  INTENT_TO_COARSE,
  TASKS,
  taskSpec,
} from '../../src/data/tasks';

describe('task catalog', () => {
  it('src/data/task-names.json (what make and the Airflow DAGs accept as TASK) lists exactly the declared tasks', () => {
    expect([...taskNames].sort()).toEqual([...TASK_NAMES, ...TABULAR_TASK_NAMES].sort());
  });

  it('groups each of the 77 Banking77 intents into exactly one coarse category', () => {
    const all = Object.values(BANKING77_COARSE).flat();
    expect(all).toHaveLength(77);
    expect(new Set(all).size).toBe(77);
    expect(Object.keys(BANKING77_COARSE)).toEqual([
      'Card',
      'Payments & Billing',
      'Transfers',
      'Top-up & Cash',
      'Account & Security',
    ]);
    expect(INTENT_TO_COARSE.terminate_account).toBe('Account & Security');
    expect(BANKING77_INTENTS).toHaveLength(77);
  });

  it('derives labels per task', () => {
    const row = { text: 'close my account', category: 'terminate_account' };
    expect(TASKS['support-category'].toExample(row).label).toBe('Account & Security');
    expect(TASKS['churn-intent'].toExample(row).label).toBe('churn');
    expect(TASKS['churn-intent'].toExample({ ...row, category: 'card_arrival' }).label).toBe('other');
    expect(TASKS['conversation-churn'].toExample({ churn: 'yes', chat_log: 'x' }).label).toBe('yes');
    expect(() => taskSpec('nope')).toThrow(/Tasks: support-category/);
  });
});

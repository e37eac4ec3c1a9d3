/**
 * The classification tasks, declared in one place (Kedro-style catalog): which raw files each reads,
 * its row schema, how a label is derived, which cleaning applies, and how it is split.
 */
import { z } from 'zod';
import { DEFAULT_CLEANING, type CleaningConfig } from './clean';

/**
 * Banking77's 77 intents grouped into five support queues a contact centre would route to.
 * Every intent belongs to exactly one group (checked by tests/unit/tasks.test.ts).
 */
export const BANKING77_COARSE: Record<string, readonly string[]> = {
  Card: [
    'activate_my_card',
    'apple_pay_or_google_pay',
    'card_about_to_expire',
    'card_acceptance',
    'card_arrival',
    'card_delivery_estimate',
    'card_linking',
    'card_not_working',
    'card_swallowed',
    'change_pin',
    'compromised_card',
    'contactless_not_working',
    'disposable_card_limits',
    'get_disposable_virtual_card',
    'get_physical_card',
    'getting_spare_card',
    'getting_virtual_card',
    'lost_or_stolen_card',
    'order_physical_card',
    'pin_blocked',
    'supported_cards_and_currencies',
    'virtual_card_not_working',
    'visa_or_mastercard',
  ],
  'Payments & Billing': [
    'Refund_not_showing_up',
    'card_payment_fee_charged',
    'card_payment_not_recognised',
    'card_payment_wrong_exchange_rate',
    'declined_card_payment',
    'direct_debit_payment_not_recognised',
    'exchange_charge',
    'exchange_rate',
    'exchange_via_app',
    'extra_charge_on_statement',
    'fiat_currency_support',
    'pending_card_payment',
    'request_refund',
    'reverted_card_payment?',
    'transaction_charged_twice',
  ],
  Transfers: [
    'balance_not_updated_after_bank_transfer',
    'beneficiary_not_allowed',
    'cancel_transfer',
    'declined_transfer',
    'failed_transfer',
    'pending_transfer',
    'receiving_money',
    'transfer_fee_charged',
    'transfer_into_account',
    'transfer_not_received_by_recipient',
    'transfer_timing',
  ],
  'Top-up & Cash': [
    'atm_support',
    'automatic_top_up',
    'balance_not_updated_after_cheque_or_cash_deposit',
    'cash_withdrawal_charge',
    'cash_withdrawal_not_recognised',
    'declined_cash_withdrawal',
    'pending_cash_withdrawal',
    'pending_top_up',
    'top_up_by_bank_transfer_charge',
    'top_up_by_card_charge',
    'top_up_by_cash_or_cheque',
    'top_up_failed',
    'top_up_limits',
    'top_up_reverted',
    'topping_up_by_card',
    'verify_top_up',
    'wrong_amount_of_cash_received',
    'wrong_exchange_rate_for_cash_withdrawal',
  ],
  'Account & Security': [
    'age_limit',
    'country_support',
    'edit_personal_details',
    'lost_or_stolen_phone',
    'passcode_forgotten',
    'terminate_account',
    'unable_to_verify_identity',
    'verify_my_identity',
    'verify_source_of_funds',
    'why_verify_identity',
  ],
};

export const INTENT_TO_COARSE: Record<string, string> = Object.fromEntries(
  Object.entries(BANKING77_COARSE).flatMap(([group, intents]) => intents.map((i) => [i, group])),
);

export const BANKING77_INTENTS: readonly string[] = Object.values(BANKING77_COARSE).flat().sort();

/** A labelled text after ingestion: the unit every later stage works on. */
export interface Example {
  /** Stable id: `<file>#<row>` so any prediction can be traced back to its source row. */
  id: string;
  text: string;
  label: string;
  /** Finer label kept for analysis (e.g. the Banking77 intent behind a coarse category). */
  fineLabel?: string;
}

export interface SplitSpec {
  seed: number;
  /** Share of the training pool held out for validation. */
  validationShare: number;
  /** Share held out for test when the dataset ships no test file. */
  testShare: number;
}

export interface RawFile {
  /** Path under data/raw/. */
  path: string;
  /** `test` when the dataset ships a fixed test split; otherwise `pool` (split by us). */
  role: 'pool' | 'test';
}

export interface TaskSpec<R = unknown> {
  name: string;
  description: string;
  dataset: string;
  files: RawFile[];
  schema: z.ZodType<R>;
  textFields: string[];
  toExample: (row: R, id: string) => { text: string; label: string; fineLabel?: string };
  cleaning: CleaningConfig | null;
  maxBadShare: number;
  maxTextChars: number;
  split: SplitSpec;
  /** Positive class for binary tasks (AUC, churn buckets). */
  positiveLabel?: string;
  notes?: string;
}

const banking77Row = z.object({
  text: z.string().trim().min(1, 'text is empty'),
  category: z.enum(BANKING77_INTENTS as [string, ...string[]], { message: 'unknown Banking77 intent' }),
});
type Banking77Row = z.infer<typeof banking77Row>;

const chatlogRow = z.object({
  churn: z.enum(['yes', 'no'], { message: 'churn must be "yes" or "no"' }),
  chat_log: z.string().trim().min(1, 'chat_log is empty'),
});
type ChatlogRow = z.infer<typeof chatlogRow>;

const SPLIT: SplitSpec = { seed: 42, validationShare: 0.1, testShare: 0.15 };
const banking77Files: RawFile[] = [
  { path: 'banking77/train.csv', role: 'pool' },
  { path: 'banking77/test.csv', role: 'test' },
];

export const TASKS = {
  'support-category': {
    name: 'support-category',
    description: 'Route a customer-service query to one of five support queues (Banking77 intents grouped).',
    dataset: 'banking77',
    files: banking77Files,
    schema: banking77Row,
    textFields: ['text'],
    toExample: (r: Banking77Row) => ({ text: r.text, label: INTENT_TO_COARSE[r.category]!, fineLabel: r.category }),
    cleaning: { ...DEFAULT_CLEANING, normaliseSpeakers: false },
    maxBadShare: 0.01,
    maxTextChars: 2000,
    split: SPLIT,
  } satisfies TaskSpec<Banking77Row>,
  'support-intent': {
    name: 'support-intent',
    description: 'The 77 fine-grained Banking77 intents (the published benchmark).',
    dataset: 'banking77',
    files: banking77Files,
    schema: banking77Row,
    textFields: ['text'],
    toExample: (r: Banking77Row) => ({ text: r.text, label: r.category }),
    cleaning: { ...DEFAULT_CLEANING, normaliseSpeakers: false },
    maxBadShare: 0.01,
    maxTextChars: 2000,
    split: SPLIT,
  } satisfies TaskSpec<Banking77Row>,
  'churn-intent': {
    name: 'churn-intent',
    description: 'Does the query ask to close the account? Banking77 terminate_account vs every other intent.',
    dataset: 'banking77',
    files: banking77Files,
    schema: banking77Row,
    textFields: ['text'],
    toExample: (r: Banking77Row) => ({
      text: r.text,
      label: r.category === 'terminate_account' ? 'churn' : 'other',
      fineLabel: r.category,
    }),
    cleaning: { ...DEFAULT_CLEANING, normaliseSpeakers: false },
    maxBadShare: 0.01,
    maxTextChars: 2000,
    split: SPLIT,
    positiveLabel: 'churn',
    notes: 'Heavily imbalanced (about 1.1% positive): report PR-AUC and per-class recall, use class weights.',
  } satisfies TaskSpec<Banking77Row>,
  'conversation-churn': {
    name: 'conversation-churn',
    description: 'Will the customer churn, judged from a multi-turn chat transcript (Customer/Agent turns)?',
    dataset: 'aws-churn-chatlogs',
    files: [{ path: 'aws-churn-chatlogs/text.csv', role: 'pool' }],
    schema: chatlogRow,
    textFields: ['chat_log'],
    toExample: (r: ChatlogRow) => ({ text: r.chat_log, label: r.churn }),
    cleaning: DEFAULT_CLEANING,
    // 697 of 3,333 logs are empty in the published file; they are quarantined, not dropped.
    maxBadShare: 0.25,
    maxTextChars: 20_000,
    split: SPLIT,
    positiveLabel: 'yes',
    notes:
      'Synthetic (GPT-2) transcripts whose labels leak through keywords (upgrade/cancel): a pipeline test, not ' +
      'evidence.',
  } satisfies TaskSpec<ChatlogRow>,
} as const;

export type TaskName = keyof typeof TASKS;
export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

/**
 * A task of any row type. `any`, not `unknown`: a spec's toExample takes its own row type, so a
 * TaskSpec<Banking77Row> is not a TaskSpec<unknown>; code that handles every task never reads rows.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskSpec = TaskSpec<any>;

export function taskSpec(name: string): AnyTaskSpec {
  const t = (TASKS as Record<string, AnyTaskSpec>)[name];
  if (!t) throw new Error(`Unknown task "${name}". Tasks: ${TASK_NAMES.join(', ')}`);
  return t;
}

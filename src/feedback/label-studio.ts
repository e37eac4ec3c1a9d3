/**
 * The review queue in Label Studio, over its REST API (undici; every answer zod-checked): one project per
 * task whose choices are the task's labels plus out_of_scope, batches imported as tasks with the served
 * model's answer as a pre-annotation (score and model version, so its uncertainty sampling can order
 * them), and finished annotations exported back as labelled rows for the same import path the CSV takes.
 */
import { request } from 'undici';
import { z } from 'zod';
import type { LabelledRow } from './review-import';
import { OUT_OF_SCOPE, type BatchManifest } from './types';

const ProjectSchema = z.object({ id: z.number().int(), title: z.string(), label_config: z.string().optional() });
type Project = z.infer<typeof ProjectSchema>;

const AnnotationSchema = z.object({
  id: z.number().int(),
  was_cancelled: z.boolean().optional(),
  updated_at: z.string().optional(),
  completed_by: z.union([z.number(), z.object({ id: z.number().optional(), email: z.string().optional() })]).optional(),
  result: z.array(
    z.object({ from_name: z.string(), type: z.string(), value: z.object({ choices: z.array(z.string()).optional() }) }),
  ),
});
const ExportedTaskSchema = z.object({
  id: z.number().int(),
  data: z.record(z.string(), z.unknown()),
  annotations: z.array(AnnotationSchema).default([]),
});
export type ExportedTask = z.infer<typeof ExportedTaskSchema>;

/** The project title of a task's review queue. */
export const reviewProjectTitle = (task: string): string => `convo-mlops review: ${task}`;

const xmlAttr = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The labelling interface: the text, and one choice among the labels. */
export function labelConfig(labels: readonly string[]): string {
  return [
    '<View>',
    '  <Text name="text" value="$text"/>',
    '  <Choices name="label" toName="text" choice="single" showInLine="false">',
    ...labels.map((l) => `    <Choice value="${xmlAttr(l)}"/>`),
    '  </Choices>',
    '</View>',
  ].join('\n');
}

/** A batch's items as Label Studio tasks, each with the model's answer as a pre-annotation. */
export function batchTasks(batch: BatchManifest): object[] {
  return batch.items.map((i) => ({
    data: {
      text: i.text,
      item_id: i.item_id,
      batch_id: i.batch_id,
      reason: i.reason,
      model: i.model,
      version: i.version,
    },
    predictions: [
      {
        model_version: `${i.model} v${i.version}`,
        score: i.confidence,
        result: [
          {
            from_name: 'label',
            to_name: 'text',
            type: 'choices',
            value: { choices: [i.in_scope ? i.top_label : OUT_OF_SCOPE] },
          },
        ],
      },
    ],
  }));
}

/**
 * Exported tasks as labelled rows: the newest annotation that was not skipped; tasks nobody finished are
 * left out (they stay in Label Studio). `annotator` is the user's email when the export carries it.
 */
export function labelledRows(
  tasks: readonly ExportedTask[],
  emails: ReadonlyMap<number, string> = new Map(),
): LabelledRow[] {
  return tasks.flatMap((t) => {
    const done = t.annotations
      .filter((a) => !a.was_cancelled)
      .sort((a, b) => (b.updated_at ?? '').localeCompare(a.updated_at ?? '') || b.id - a.id);
    const a = done[0];
    if (!a) return [];
    const label = a.result.find((r) => r.from_name === 'label')?.value.choices?.[0] ?? '';
    const by = a.completed_by;
    const id = typeof by === 'object' ? by.id : by;
    const annotator =
      (typeof by === 'object' ? by.email : undefined) ??
      (id !== undefined ? (emails.get(id) ?? `label-studio user ${id}`) : 'label-studio');
    return [
      {
        item_id: String(t.data.item_id ?? ''),
        batch_id: String(t.data.batch_id ?? ''),
        text: String(t.data.text ?? ''),
        label,
        annotator,
      },
    ];
  });
}

export class LabelStudioClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  private async call<T>(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    schema: z.ZodType<T>,
    body?: unknown,
  ): Promise<T> {
    const res = await request(new URL(path, this.url), {
      method,
      headers: { authorization: `Token ${this.token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: 60_000,
      bodyTimeout: 300_000,
    });
    const text = await res.body.text();
    if (res.statusCode >= 300)
      throw new Error(`Label Studio ${method} ${path}: HTTP ${res.statusCode}: ${text.slice(0, 500)}`);
    const parsed = schema.safeParse(text ? JSON.parse(text) : undefined);
    if (!parsed.success)
      throw new Error(`Label Studio ${method} ${path}: unexpected answer: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  }

  async projects(): Promise<Project[]> {
    const page = z.union([z.array(ProjectSchema), z.object({ results: z.array(ProjectSchema) })]);
    const r = await this.call('GET', '/api/projects?page_size=1000', page);
    return Array.isArray(r) ? r : r.results;
  }

  /** The task's review project, created on first use; new labels are added to its interface. */
  async ensureProject(task: string, labels: readonly string[]): Promise<{ id: number; created: boolean }> {
    const title = reviewProjectTitle(task);
    const config = labelConfig(labels);
    const found = (await this.projects()).find((p) => p.title === title);
    if (!found) {
      const p = await this.call('POST', '/api/projects', ProjectSchema, {
        title,
        label_config: config,
        description: `Review queue of ${task}: served predictions to label (make review / make review-import).`,
        show_collab_predictions: true,
      });
      return { id: p.id, created: true };
    }
    if (found.label_config !== config)
      await this.call('PATCH', `/api/projects/${found.id}`, ProjectSchema, { label_config: config });
    return { id: found.id, created: false };
  }

  /** Imports a batch as tasks with pre-annotations; returns how many tasks were created. */
  async importBatch(projectId: number, batch: BatchManifest): Promise<number> {
    const r = await this.call(
      'POST',
      `/api/projects/${projectId}/import`,
      z.object({ task_count: z.number().int() }).loose(),
      batchTasks(batch),
    );
    return r.task_count;
  }

  /** Every task of the project with its annotations (the JSON export). */
  async exportTasks(projectId: number): Promise<ExportedTask[]> {
    return this.call(
      'GET',
      `/api/projects/${projectId}/export?exportType=JSON&download_all_tasks=true`,
      z.array(ExportedTaskSchema),
    );
  }

  /** Email of every user, by id (exports name annotators by id). */
  async userEmails(): Promise<Map<number, string>> {
    const users = await this.call('GET', '/api/users', z.array(z.object({ id: z.number(), email: z.string() })));
    return new Map(users.map((u) => [u.id, u.email]));
  }

  /** The project's task ids by item id (to annotate through the API, as tests and scripted reviewers do). */
  async taskIds(projectId: number): Promise<Map<string, number>> {
    const tasks = await this.exportTasks(projectId);
    return new Map(tasks.map((t) => [String(t.data.item_id), t.id]));
  }

  /** Posts an annotation choosing `label` for a task. */
  async annotate(taskId: number, label: string): Promise<void> {
    await this.call('POST', `/api/tasks/${taskId}/annotations`, z.object({ id: z.number() }).loose(), {
      result: [{ from_name: 'label', to_name: 'text', type: 'choices', value: { choices: [label] } }],
      was_cancelled: false,
      ground_truth: false,
    });
  }
}

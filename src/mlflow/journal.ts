/**
 * Append-only local journal of tracking calls that could not reach the server, one JSONL file
 * per run under mlflow/.journal/. Entries are replayed in order when the server is back; an
 * `ack` line marks each one delivered, so a crash during replay resends only what was not
 * acknowledged (and MLflow ignores an identical metric sent twice, so nothing is duplicated).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BatchPayload } from './validation';
import { writeFileAtomic } from '../io/files';

export type JournalOp =
  | { op: 'log-batch'; body: BatchPayload }
  | { op: 'update-run'; body: { status: string; end_time?: number; run_name?: string } };

export type JournalEntry = JournalOp & { seq: number; at: number };

type Line = JournalEntry | { ack: number };

export class RunJournal {
  /** Last sequence number per run, so appends during a long outage do not re-read the file. */
  private readonly lastSeq = new Map<string, number>();

  constructor(readonly dir: string) {}

  file(runId: string): string {
    if (!/^[\w-]+$/.test(runId)) throw new Error(`invalid run id for journal: ${runId}`);
    return path.join(this.dir, `${runId}.jsonl`);
  }

  /**
   * The file's complete entries. A crash or a full disk mid-append leaves a torn tail (no newline); an
   * append after it would merge into it, so the torn bytes (and any line that does not parse, e.g. from
   * such a merge by an older version) are set aside in `<run>.jsonl.torn` with a warning, and the file is
   * rewritten atomically with every complete entry kept.
   */
  private read(runId: string): Line[] {
    const f = this.file(runId);
    if (!fs.existsSync(f)) return [];
    const text = fs.readFileSync(f, 'utf8');
    const end = text.lastIndexOf('\n') + 1;
    const out: Line[] = [];
    const bad: string[] = [];
    for (const line of text.slice(0, end).split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as Line);
      } catch {
        bad.push(line);
      }
    }
    if (end < text.length) bad.push(text.slice(end));
    if (bad.length) {
      fs.appendFileSync(`${f}.torn`, `${bad.join('\n')}\n`);
      writeFileAtomic(f, out.map((l) => `${JSON.stringify(l)}\n`).join(''));
      console.warn(`journal ${f}: set ${bad.length} torn or unreadable line(s) aside in ${f}.torn; kept ${out.length}`);
    }
    return out;
  }

  /** Before writing: a tail without its newline is torn; `read` sets it aside (only then is the file re-read). */
  private healTail(runId: string): void {
    const f = this.file(runId);
    if (!fs.existsSync(f)) return;
    const size = fs.statSync(f).size;
    if (size === 0) return;
    const last = Buffer.alloc(1);
    const fd = fs.openSync(f, 'r');
    try {
      fs.readSync(fd, last, 0, 1, size - 1);
    } finally {
      fs.closeSync(fd);
    }
    if (last[0] !== 0x0a) this.read(runId);
  }

  /** Entries not yet acknowledged, in the order they were written. */
  pending(runId: string): JournalEntry[] {
    const lines = this.read(runId);
    const acked = new Set(lines.flatMap((l) => ('ack' in l ? [l.ack] : [])));
    return lines.filter((l): l is JournalEntry => !('ack' in l) && !acked.has(l.seq));
  }

  hasPending(runId: string): boolean {
    return fs.existsSync(this.file(runId)) && this.pending(runId).length > 0;
  }

  append(runId: string, op: JournalOp): JournalEntry {
    fs.mkdirSync(this.dir, { recursive: true });
    this.healTail(runId);
    const last =
      this.lastSeq.get(runId) ?? this.read(runId).reduce((max, l) => Math.max(max, 'ack' in l ? l.ack : l.seq), 0);
    const seq = last + 1;
    this.lastSeq.set(runId, seq);
    const entry: JournalEntry = { ...op, seq, at: Date.now() };
    fs.appendFileSync(this.file(runId), `${JSON.stringify(entry)}\n`);
    return entry;
  }

  ack(runId: string, seq: number): void {
    this.healTail(runId);
    fs.appendFileSync(this.file(runId), `${JSON.stringify({ ack: seq })}\n`);
  }

  /** Removes the run's journal once everything in it is delivered. */
  compact(runId: string): void {
    if (fs.existsSync(this.file(runId)) && this.pending(runId).length === 0) {
      fs.rmSync(this.file(runId));
      this.lastSeq.delete(runId);
    }
  }

  /** Runs with undelivered entries (e.g. to replay after a crash). */
  runsWithPending(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => f.slice(0, -'.jsonl'.length))
      .filter((id) => this.pending(id).length > 0);
  }
}

// Call records in PostgreSQL, the usual home of call detail records: durable, queryable by time and
// desk, exportable in bulk. The record's derived fields are merged by the same pure function as the
// memory adapter (mergeRow), inside a transaction holding the row lock, so a transition written twice
// (a retry) changes nothing.
import pg from 'pg';
import type { Transfer } from '../domain/transfer.js';
import type { TransitionRecord } from '../ports.js';
import {
  decodeCursor,
  encodeCursor,
  mergeRow,
  rowOf,
  toCallRecord,
  type CallRecord,
  type CallRecordStore,
  type Page,
  type PageResult,
  type RecordFilter,
  type RecordRow,
  type TicketFeedback,
} from './call-record.js';

const MIGRATION = `
CREATE TABLE IF NOT EXISTS call_records (
  transfer_id     text PRIMARY KEY,
  kind            text NOT NULL,
  ticket_id       text NOT NULL,
  from_desk       text NOT NULL,
  to_desk         text NOT NULL,
  state           text NOT NULL,
  category_code   text,
  version         integer NOT NULL,
  created_at      timestamptz NOT NULL,
  answered_at     timestamptz,
  ended_at        timestamptz,
  doc             jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS call_records_created ON call_records (created_at DESC, transfer_id DESC);
CREATE INDEX IF NOT EXISTS call_records_ticket ON call_records (ticket_id);
CREATE TABLE IF NOT EXISTS call_transitions (
  transfer_id text NOT NULL REFERENCES call_records ON DELETE CASCADE,
  version     integer NOT NULL,
  at          timestamptz NOT NULL,
  doc         jsonb NOT NULL,
  PRIMARY KEY (transfer_id, version)
);
CREATE TABLE IF NOT EXISTS call_feedback (
  id          bigserial PRIMARY KEY,
  transfer_id text NOT NULL REFERENCES call_records ON DELETE CASCADE,
  ticket_id   text NOT NULL,
  received_at timestamptz NOT NULL,
  doc         jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS call_feedback_transfer ON call_feedback (transfer_id);
`;

const STREAM_BATCH = 500;

export class PostgresCallRecords implements CallRecordStore {
  readonly durable = true;
  private readonly pool: pg.Pool;

  constructor(options: { connectionString: string; max?: number }) {
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.max ?? 5,
      connectionTimeoutMillis: 2000,
      statement_timeout: 10_000,
    });
    this.pool.on('error', () => undefined); // an idle client's broken connection; health reports it
  }

  private schema: Promise<void> | null = null;

  /** Creates the tables if missing. Also run before every operation until it has succeeded once, so a
   *  database that was down at start-up is set up when it comes back. */
  async migrate(): Promise<void> {
    this.schema ??= this.pool.query(MIGRATION).then(
      () => undefined,
      (err: unknown) => {
        this.schema = null;
        throw err;
      },
    );
    return this.schema;
  }

  async recordTransition(transfer: Transfer, transition: TransitionRecord): Promise<void> {
    await this.migrate();
    const incoming = rowOf(transfer, transition);
    await this.inTransaction(async (client) => {
      const inserted = await client.query(
        `INSERT INTO call_records (transfer_id, kind, ticket_id, from_desk, to_desk, state, category_code, version, created_at, answered_at, ended_at, doc)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (transfer_id) DO NOTHING RETURNING transfer_id`,
        columns(incoming),
      );
      const transitionAdded = await client.query(
        `INSERT INTO call_transitions (transfer_id, version, at, doc) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING RETURNING version`,
        [transition.transferId, transition.version, transition.at, JSON.stringify(transition)],
      );
      if (inserted.rowCount === 1) return;
      const stored = await client.query<{ doc: RecordRow }>('SELECT doc FROM call_records WHERE transfer_id = $1 FOR UPDATE', [transfer.id]);
      const current = stored.rows[0]?.doc ?? null;
      const merged = mergeRow(current, incoming, transitionAdded.rowCount === 1);
      await client.query(
        `UPDATE call_records SET kind=$2, ticket_id=$3, from_desk=$4, to_desk=$5, state=$6, category_code=$7, version=$8,
           created_at=$9, answered_at=$10, ended_at=$11, doc=$12 WHERE transfer_id=$1`,
        columns(merged),
      );
    });
  }

  async recordAdvice(row: RecordRow): Promise<void> {
    await this.migrate();
    await this.pool.query(
      `INSERT INTO call_records (transfer_id, kind, ticket_id, from_desk, to_desk, state, category_code, version, created_at, answered_at, ended_at, doc)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (transfer_id) DO NOTHING`,
      columns(row),
    );
  }

  async addFeedback(feedback: TicketFeedback): Promise<void> {
    await this.migrate();
    await this.pool.query('INSERT INTO call_feedback (transfer_id, ticket_id, received_at, doc) VALUES ($1,$2,$3,$4)', [
      feedback.transferId,
      feedback.ticketId,
      feedback.receivedAt,
      JSON.stringify(feedback),
    ]);
  }

  async get(transferId: string): Promise<CallRecord | null> {
    await this.migrate();
    const rows = await this.pool.query<{ doc: RecordRow }>('SELECT doc FROM call_records WHERE transfer_id = $1', [transferId]);
    return (await this.complete(rows.rows.map((r) => r.doc)))[0] ?? null;
  }

  async byTicket(ticketId: string): Promise<CallRecord[]> {
    await this.migrate();
    const rows = await this.pool.query<{ doc: RecordRow }>(
      'SELECT doc FROM call_records WHERE ticket_id = $1 ORDER BY created_at DESC, transfer_id DESC',
      [ticketId],
    );
    return this.complete(rows.rows.map((r) => r.doc));
  }

  async query(filter: RecordFilter, page: Page): Promise<PageResult> {
    await this.migrate();
    const after = page.cursor ? decodeCursor(page.cursor) : null;
    const rows = await this.page(filter, after, page.limit + 1);
    const taken = rows.slice(0, page.limit);
    const last = taken.at(-1);
    return { records: await this.complete(taken), next: rows.length > page.limit && last ? encodeCursor(last) : null };
  }

  async *stream(filter: RecordFilter): AsyncIterable<CallRecord> {
    await this.migrate();
    let after: { createdAt: string; transferId: string } | null = null;
    for (;;) {
      const rows = await this.page(filter, after, STREAM_BATCH);
      for (const record of await this.complete(rows)) yield record;
      const last = rows.at(-1);
      if (rows.length < STREAM_BATCH || !last) return;
      after = { createdAt: last.createdAt, transferId: last.transferId };
    }
  }

  async overdue(createdBefore: Date, limit: number): Promise<CallRecord[]> {
    await this.migrate();
    const rows = await this.pool.query<{ doc: RecordRow }>(
      `SELECT r.doc FROM call_records r
        WHERE r.kind = 'transfer' AND r.answered_at IS NOT NULL AND r.state NOT IN ('failed', 'cancelled', 'rejected')
          AND r.created_at < $1 AND NOT EXISTS (SELECT 1 FROM call_feedback f WHERE f.transfer_id = r.transfer_id)
        ORDER BY r.created_at ASC LIMIT $2`,
      [createdBefore.toISOString(), limit],
    );
    return this.complete(rows.rows.map((r) => r.doc));
  }

  async purge(createdBefore: Date): Promise<number> {
    await this.migrate();
    const result = await this.pool.query('DELETE FROM call_records WHERE created_at < $1', [createdBefore.toISOString()]);
    return result.rowCount ?? 0;
  }

  async healthy() {
    try {
      await this.pool.query('SELECT 1');
      return { healthy: true, detail: 'call records in postgresql' };
    } catch (err) {
      return { healthy: false, detail: `postgresql: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async page(filter: RecordFilter, after: { createdAt: string; transferId: string } | null, limit: number): Promise<RecordRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (filter.from !== undefined) where.push(`created_at >= ${p(filter.from)}`);
    if (filter.to !== undefined) where.push(`created_at < ${p(filter.to)}`);
    if (filter.direction !== undefined) {
      const [from, to] = filter.direction.split('-');
      where.push(`from_desk = ${p(from)} AND to_desk = ${p(to)}`);
    }
    if (filter.desk !== undefined) {
      const d = p(filter.desk);
      where.push(`(from_desk = ${d} OR to_desk = ${d})`);
    }
    if (filter.state !== undefined) where.push(`state = ${p(filter.state)}`);
    if (filter.category !== undefined) {
      where.push(`(category_code = ${p(filter.category)} OR category_code LIKE ${p(`${filter.category}.%`)})`);
    }
    if (after !== null) where.push(`(created_at, transfer_id) < (${p(after.createdAt)}::timestamptz, ${p(after.transferId)}::text)`);
    const sql = `SELECT doc FROM call_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY created_at DESC, transfer_id DESC LIMIT ${p(limit)}`;
    const result = await this.pool.query<{ doc: RecordRow }>(sql, params);
    return result.rows.map((r) => r.doc);
  }

  private async complete(rows: RecordRow[]): Promise<CallRecord[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.transferId);
    const [transitions, feedback] = await Promise.all([
      this.pool.query<{ transfer_id: string; doc: TransitionRecord }>(
        'SELECT transfer_id, doc FROM call_transitions WHERE transfer_id = ANY($1) ORDER BY version',
        [ids],
      ),
      this.pool.query<{ transfer_id: string; doc: TicketFeedback }>(
        'SELECT transfer_id, doc FROM call_feedback WHERE transfer_id = ANY($1) ORDER BY id',
        [ids],
      ),
    ]);
    const group = <T>(list: { transfer_id: string; doc: T }[]) => {
      const map = new Map<string, T[]>();
      for (const { transfer_id, doc } of list) map.set(transfer_id, [...(map.get(transfer_id) ?? []), doc]);
      return map;
    };
    const t = group(transitions.rows);
    const f = group(feedback.rows);
    return rows.map((row) => toCallRecord(row, t.get(row.transferId) ?? [], f.get(row.transferId) ?? []));
  }

  private async inTransaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.pool.connect();
    // A connection that drops between two queries makes a checked-out client emit 'error'; the pool
    // listens only to idle ones, and an unheard 'error' would end the process.
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackFailed: unknown) => {
        broken ??= rollbackFailed instanceof Error ? rollbackFailed : new Error(String(rollbackFailed));
      });
      throw err;
    } finally {
      client.off('error', onError);
      // A broken client is closed rather than handed to the next write.
      client.release(broken);
    }
  }
}

function columns(row: RecordRow): unknown[] {
  return [
    row.transferId,
    row.kind,
    row.ticketId,
    row.from,
    row.to,
    row.state,
    row.categoryCode,
    row.version,
    row.createdAt,
    row.answeredAt,
    row.endedAt,
    JSON.stringify(row),
  ];
}

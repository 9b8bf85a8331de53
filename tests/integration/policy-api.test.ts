// The linkage policy through the HTTP API, as an agent, a receiving seat and a supervisor use it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BusEvent } from '../../src/ports.js';
import { PostgresCallRecords } from '../../src/records/postgres-call-records.js';
import { auth, transferBody } from '../support/harness.js';
import { startPolicyHarness, type PolicyHarness } from '../support/policy-harness.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { startProxy } from '../support/tcp-proxy.js';
import { freePort, startRedis, type RedisServer } from '../support/redis-server.js';

const ticket = (categoryCode: string) => ({ ...transferBody().ticket, categoryCode });

describe('the linkage policy over HTTP (in memory)', () => {
  let h: PolicyHarness;
  afterEach(async () => h.close());

  it('GET /v1/routing/suggest names the owning desk or the redirect for a category, by code or name', async () => {
    h = await startPolicyHarness();
    const owner = await h.app.inject({ url: '/v1/routing/suggest?category=' + encodeURIComponent('违章停车'), headers: auth('agent') });
    expect(owner.json()).toMatchObject({ action: 'transfer', desk: '12345', category: { code: '2.09', name: '市容管理' } });
    const hotline = await h.app.inject({ url: '/v1/routing/suggest?category=3.02', headers: auth('agent') });
    expect(hotline.json()).toMatchObject({ action: 'redirect-transfer', redirect: { numbers: ['12395'], desk: '12395' } });
    const unknown = await h.app.inject({ url: '/v1/routing/suggest?category=nope', headers: auth('agent') });
    expect([unknown.statusCode, unknown.json().error.code]).toEqual([404, 'unknown_category']);
    const list = await h.app.inject({ url: '/v1/routing', headers: auth('supervisor') });
    expect(list.json().categories).toHaveLength(31);
  });

  it('refuses a transfer against the list with a clear code, and allows it with a recorded reason', async () => {
    h = await startPolicyHarness();
    const body = transferBody({ ticket: ticket('2.09.07') }); // 违章停车 belongs to 12345
    const refused = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().error).toMatchObject({ code: 'category_owned_elsewhere', details: { owner: '12345', requested: '110' } });
    expect(h.callControl.commands).toHaveLength(0);
    const stub = await h.app.inject({ url: `/v1/tickets/${body.ticket.ticketId}`, headers: auth('seat') });
    expect(stub.statusCode).toBe(404); // refused before the stub was stored: nothing half-made

    const reason = '车主与劝离人员发生肢体冲突';
    const allowed = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: { ...body, reason } });
    expect(allowed.statusCode).toBe(202);
    const id = allowed.json().transfer.id as string;
    await expect.poll(async () => (await h.records.get(id))?.routing?.overrideReason).toBe(reason);
  });

  it('sends danger to life or property to 110 at once with emergency priority, whatever the list and target say', async () => {
    h = await startPolicyHarness();
    const body = transferBody({ to: '12348', ticket: ticket('3.03.04'), danger: true }); // 人民调解 → 12348 by the list
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });
    expect(res.statusCode).toBe(202);
    expect(res.json().transfer).toMatchObject({ priority: 'emergency', target: { desk: '110' } });
    const placed = h.callControl.commands.find((c) => c.type === 'placeCall');
    expect(placed?.type === 'placeCall' && placed.request).toMatchObject({ priority: 'emergency', target: { desk: '110' } });
  });

  it('redirects a hotline category by carrying the call, and a utility by advising the caller; both recorded as redirects', async () => {
    h = await startPolicyHarness();
    const { to: _to, ...base } = transferBody({ ticket: ticket('3.01') });
    const carried = await h.app.inject({ method: 'POST', url: '/v1/redirects', headers: auth('agent'), payload: base });
    expect(carried.statusCode).toBe(202);
    expect(carried.json().transfer.target.desk).toBe('12313');
    const carriedId = carried.json().transfer.id as string;

    const { to: _to2, ...power } = transferBody({ ticket: ticket('4.01.01') });
    const advised = await h.app.inject({ method: 'POST', url: '/v1/redirects', headers: auth('agent'), payload: power });
    expect(advised.statusCode).toBe(201);
    expect(advised.json()).toMatchObject({ action: 'advise', numbers: ['95598'] });

    await expect.poll(async () => (await h.records.get(carriedId))?.kind).toBe('redirect');
    expect(await h.records.get(advised.json().recordId)).toMatchObject({ kind: 'redirect', outcome: 'advised', to: 'power' });
    const metrics = (await h.app.inject({ url: '/metrics', headers: auth('supervisor') })).body;
    expect(metrics).toContain('linkage_redirects_total{via="hotline",target="12313",action="transfer"} 1');
    expect(metrics).toContain('linkage_redirects_total{via="utility",target="power",action="advise"} 1');

    const desk = await h.app.inject({ method: 'POST', url: '/v1/redirects', headers: auth('agent'), payload: { ...base, ticket: ticket('1.01') } });
    expect(desk.json().error.code).toBe('not_a_redirect');
  });

  it('marks transfers of a flagged number, counts repeat calls, puts flags on the bus, and never logs the whole number', async () => {
    h = await startPolicyHarness();
    const events: BusEvent[] = [];
    h.bus.subscribe((e) => events.push(e));
    const flagged = await h.app.inject({
      method: 'POST', url: '/v1/nuisance/flags', headers: auth('agent'),
      payload: { callerNumber: '+86 138 0013 8000', kind: 'threatening', note: '多次扬言报复' },
    });
    expect(flagged.statusCode).toBe(201);
    expect(flagged.json()).toMatchObject({ masked: '138****8000', kind: 'threatening' });
    expect(events.find((e) => e.kind === 'nuisance')).toMatchObject({ action: 'flagged', masked: '138****8000', nuisance: 'threatening' });

    let last;
    for (let i = 0; i < 3; i += 1) {
      last = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ ticket: ticket('1.02') }) });
    }
    expect(last!.json().transfer.routing.nuisance).toEqual({ flagged: 'threatening', recentCalls: 3, repeated: true });
    const marked = events.find((e) => e.kind === 'transition' && e.transfer.id === last!.json().transfer.id && e.record.event === 'nuisance-checked');
    expect(marked?.kind === 'transition' && marked.transfer.nuisance?.flagged).toBe('threatening');
    const routing = (await h.records.get(last!.json().transfer.id))?.routing;
    expect(routing?.nuisance).toEqual({ flagged: 'threatening', recentCalls: 3, repeated: true });
    const other = await h.app.inject({
      method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ callerNumber: '13900139000', ticket: ticket('1.02') }),
    });
    expect(other.json().transfer.routing.nuisance).toEqual({ flagged: null, recentCalls: 1, repeated: false });

    const harassment = await h.app.inject({
      method: 'POST', url: '/v1/transfers', headers: auth('agent'),
      payload: transferBody({ to: '12348', ticket: ticket('2.18.02'), harassment: 'threatening' }),
    });
    expect(harassment.json().transfer.target.desk).toBe('110');
    await expect.poll(async () => (await h.records.get(harassment.json().transfer.id))?.routing?.basis).toBe('harassment');

    const lookup = await h.app.inject({ method: 'POST', url: '/v1/nuisance/lookup', headers: auth('agent'), payload: { callerNumber: '13800138000' } });
    expect(lookup.json()).toMatchObject({ flag: { kind: 'threatening' }, recentCalls: 4 });
    const call = await h.app.inject({ method: 'POST', url: '/v1/nuisance/calls', headers: auth('pbx'), payload: { callerNumber: '13900139000' } });
    expect(call.json()).toMatchObject({ masked: '139****9000', flag: null, recentCalls: 2, repeated: false });
    const list = await h.app.inject({ url: '/v1/nuisance/flags', headers: auth('supervisor') });
    expect(list.json().flags).toEqual([expect.objectContaining({ masked: '138****8000', kind: 'threatening', note: '多次扬言报复' })]);
    const unflag = await h.app.inject({ method: 'POST', url: '/v1/nuisance/unflag', headers: auth('supervisor'), payload: { callerNumber: '13800138000' } });
    expect(unflag.json()).toEqual({ removed: true });
    expect(events.filter((e) => e.kind === 'nuisance').map((e) => e.kind === 'nuisance' && e.action)).toEqual(['flagged', 'unflagged']);
    await h.policy.writer.flush();
    expect(h.rawLogs.join('\n')).not.toContain('13800138000');
    const metrics = (await h.app.inject({ url: '/metrics', headers: auth('supervisor') })).body;
    expect(metrics).not.toContain('13800138000');
  });

  it('closes the loop: the seat posts feedback, the sending desk reads it, a not-ours send-back is a bounce-back', async () => {
    h = await startPolicyHarness();
    const events: BusEvent[] = [];
    h.bus.subscribe((e) => events.push(e));
    const body = transferBody({ ticket: ticket('1.02') });
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });
    const id = res.json().transfer.id as string;
    await expect.poll(async () => (await h.records.get(id))?.outcome).toBe('connected');

    const feedback = {
      outcome: 'sent-back', sentBackReason: 'not-ours', handlingUnit: '七星分局', result: '属邻里纠纷，退回12345', handledAt: new Date().toISOString(),
    };
    const agentTry = await h.app.inject({ method: 'POST', url: `/v1/tickets/${body.ticket.ticketId}/feedback`, headers: auth('agent'), payload: feedback });
    expect(agentTry.statusCode).toBe(403);
    const posted = await h.app.inject({ method: 'POST', url: `/v1/tickets/${body.ticket.ticketId}/feedback`, headers: auth('seat'), payload: feedback });
    expect(posted.statusCode).toBe(201);
    expect(posted.json()).toMatchObject({ transferId: id, desk: '110', bounceBack: true });
    expect(events.find((e) => e.kind === 'feedback')).toMatchObject({ ticketId: body.ticket.ticketId, bounceBack: true });

    const read = await h.app.inject({ url: `/v1/tickets/${body.ticket.ticketId}/feedback`, headers: auth('agent') });
    expect(read.json().feedback).toEqual([expect.objectContaining({ outcome: 'sent-back', handlingUnit: '七星分局' })]);
    const missing = await h.app.inject({ method: 'POST', url: '/v1/tickets/NOPE-1/feedback', headers: auth('seat'), payload: feedback });
    expect(missing.json().error.code).toBe('ticket_not_found');
    const metrics = (await h.app.inject({ url: '/metrics', headers: auth('supervisor') })).body;
    expect(metrics).toContain('linkage_bounce_backs_total{desk="110"} 1');
  });

  it('does not count, tell or flag a withheld number as if it were one', async () => {
    h = await startPolicyHarness();
    const counted = await h.app.inject({ method: 'POST', url: '/v1/nuisance/calls', headers: auth('pbx'), payload: { callerNumber: 'anonymous' } });
    expect(counted.statusCode).toBe(200);
    expect(counted.json()).toMatchObject({ masked: 'withheld', flag: null, recentCalls: 0, repeated: false });
    const flag = await h.app.inject({
      method: 'POST', url: '/v1/nuisance/flags', headers: auth('agent'), payload: { callerNumber: 'anonymous', kind: 'threatening' },
    });
    expect(flag.statusCode).toBe(400);
    expect(flag.json().error).toMatchObject({ code: 'invalid_request', details: { field: 'callerNumber' } });
  });

  it('refuses feedback naming a transfer that did not carry the ticket', async () => {
    h = await startPolicyHarness();
    const first = transferBody({ ticket: ticket('1.02') });
    const other = transferBody({ ticket: ticket('1.02') });
    const ids: string[] = [];
    for (const body of [first, other]) {
      ids.push((await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body })).json().transfer.id as string);
    }
    for (const id of ids) await expect.poll(async () => (await h.records.get(id))?.outcome).toBe('connected');
    const feedback = { outcome: 'accepted', handlingUnit: '七星分局', result: '已出警处置', handledAt: new Date().toISOString() };
    const url = `/v1/tickets/${first.ticket.ticketId}/feedback`;
    const wrong = await h.app.inject({ method: 'POST', url, headers: auth('seat'), payload: { ...feedback, transferId: ids[1] } });
    expect([wrong.statusCode, wrong.json().error.code]).toEqual([404, 'feedback_without_transfer']);
    const named = await h.app.inject({ method: 'POST', url, headers: auth('seat'), payload: { ...feedback, transferId: ids[0] } });
    expect([named.statusCode, named.json().transferId]).toEqual([201, ids[0]]);
  });

  it('takes feedback only from a seat of the desk that received the transfer', async () => {
    h = await startPolicyHarness({ desksByKey: { 'test-seat': ['12345'], 'test-pbx': ['110'] } });
    const body = transferBody({ ticket: ticket('1.02') });
    const id = (await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body })).json().transfer.id as string;
    await expect.poll(async () => (await h.records.get(id))?.outcome).toBe('connected');
    const feedback = { outcome: 'accepted', handlingUnit: '七星分局', result: '已出警处置', handledAt: new Date().toISOString() };
    const url = `/v1/tickets/${body.ticket.ticketId}/feedback`;

    // The seat key acts for 12345; the call went to 110.
    const foreign = await h.app.inject({ method: 'POST', url, headers: auth('seat'), payload: feedback });
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json().error).toMatchObject({ code: 'forbidden', details: { transferId: id } });
    expect(foreign.json().error.message).toContain('desk 110 received this transfer');
    expect((await h.app.inject({ url, headers: auth('agent') })).json().feedback).toEqual([]);

    const own = await h.app.inject({ method: 'POST', url, headers: auth('pbx'), payload: feedback });
    expect(own.statusCode).toBe(201);
    expect(own.json()).toMatchObject({ transferId: id, desk: '110', outcome: 'accepted' });
  });

  it('lists connected transfers without feedback past the deadline as overdue', async () => {
    h = await startPolicyHarness({ feedbackDeadlineHours: 1 });
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ ticket: ticket('1.01') }) });
    const id = res.json().transfer.id as string;
    await expect.poll(async () => (await h.records.get(id))?.outcome).toBe('connected');
    const now = await h.app.inject({ url: '/v1/feedback/overdue', headers: auth('supervisor') });
    expect(now.json().records).toEqual([]);
    h.setNow(new Date(Date.now() + 2 * 3_600_000));
    const later = await h.app.inject({ url: '/v1/feedback/overdue', headers: auth('supervisor') });
    expect(later.json().records.map((r: { transferId: string }) => r.transferId)).toEqual([id]);
  });

  it('lists the records of a time range or a desk, and exports text that looks like a formula defused', async () => {
    h = await startPolicyHarness();
    const made: string[] = [];
    for (const to of ['110', '119']) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ to, ticket: ticket('0301') }) });
      made.push(res.json().transfer.id as string);
    }
    // An agent's reason is free text: one that starts like a formula must not run in a spreadsheet.
    const formula = '=HYPERLINK("http://evil.example","点此")';
    const overridden = await h.app.inject({
      method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: { ...transferBody({ ticket: ticket('2.09.07') }), reason: formula },
    });
    expect(overridden.statusCode).toBe(202);
    made.push(overridden.json().transfer.id as string);
    for (const id of made) await expect.poll(async () => (await h.records.get(id))?.outcome).toBe('connected');

    const list = async (query: string) =>
      ((await h.app.inject({ url: `/v1/transfers?${query}`, headers: auth('supervisor') })).json().records as { transferId: string }[]).map((r) => r.transferId);
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const hourOn = new Date(Date.now() + 3_600_000).toISOString();
    expect((await list('desk=119'))).toEqual([made[1]]);
    expect((await list(`from=${encodeURIComponent(hourAgo)}&to=${encodeURIComponent(hourOn)}`)).sort()).toEqual([...made].sort());
    expect(await list(`from=${encodeURIComponent(hourOn)}`)).toEqual([]);
    expect(await list(`to=${encodeURIComponent(hourAgo)}`)).toEqual([]);

    const csv = await h.app.inject({ url: '/v1/transfers/export?format=csv&direction=12345-110', headers: auth('supervisor') });
    const withReason = csv.body.split('\r\n').find((row) => row.startsWith(made[2]!));
    expect(withReason).toContain(`,"'=HYPERLINK(""http://evil.example"",""点此"")",`);
  });

  it('keeps the first receiver on every record: a three-way the desk never took stays with it (首接负责制)', async () => {
    h = await startPolicyHarness();
    const threeWay = await h.app.inject({
      method: 'POST', url: '/v1/transfers', headers: auth('agent'),
      payload: transferBody({ mode: 'three-way', firstReceiver: '12345', ticket: ticket('4.04') , reason: '权属不清，三方会商' }),
    });
    const consulted = threeWay.json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(consulted)).state).toBe('conferenced');
    h.callControl.emit({ type: 'party-left', transferId: consulted, party: 'target', cause: 'NORMAL_CLEARING' });
    await expect.poll(async () => (await h.records.get(consulted))?.state).toBe('completed');
    const record = await h.app.inject({ url: `/v1/transfers/${consulted}/record`, headers: auth('supervisor') });
    expect(record.json()).toMatchObject({ firstReceiver: '12345', owner: { desk: '12345', basis: 'first-receiver' }, outcome: 'connected' });

    const blind = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ ticket: ticket('1.01') }) });
    const taken = blind.json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(taken)).state).toBe('bridged');
    h.callControl.emit({ type: 'party-left', transferId: taken, party: 'citizen', cause: 'NORMAL_CLEARING' });
    await expect.poll(async () => (await h.records.get(taken))?.owner).toEqual({ desk: '110', basis: 'taken-by-target' });
    expect((await h.records.get(taken))?.firstReceiver).toBe('12345');
  });

  it('documents the policy routes in the OpenAPI description', async () => {
    h = await startPolicyHarness();
    const doc = await h.app.inject({ url: '/docs/json', headers: auth('supervisor') });
    expect(doc.statusCode).toBe(200);
    expect(Object.keys(doc.json().paths)).toEqual(
      expect.arrayContaining(['/v1/routing', '/v1/routing/suggest', '/v1/redirects', '/v1/tickets/{id}/feedback', '/v1/transfers/export', '/v1/summary']),
    );
  });

  it('says in /health/ready that call records are only in memory', async () => {
    h = await startPolicyHarness();
    const ready = await h.app.inject({ url: '/health/ready' });
    expect(ready.json().checks).toContainEqual({ name: 'call-records', healthy: true, detail: expect.stringContaining('in memory') });
  });
});

describe('when Redis is down', () => {
  let redis: RedisServer;
  let h: PolicyHarness;
  beforeAll(async () => {
    redis = await startRedis();
    h = await startPolicyHarness({ redisUrl: redis.url });
  });
  afterAll(async () => {
    await h?.close();
    await redis?.stop();
  });

  it('a danger transfer still goes to 110 at once, its nuisance mark left unknown', async () => {
    await redis.stop();
    const res = await h.app.inject({
      method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ to: '12345', ticket: ticket('2.01'), danger: true }),
    });
    expect(res.statusCode).toBe(202);
    expect(res.json().transfer).toMatchObject({ priority: 'emergency', target: { desk: '110' }, routing: { basis: 'danger', nuisance: null } });
    const flag = await h.app.inject({ method: 'POST', url: '/v1/nuisance/flags', headers: auth('agent'), payload: { callerNumber: '13800138000', kind: 'repeated' } });
    expect([flag.statusCode, flag.json().error.code]).toEqual([503, 'store_unavailable']);
  });
});

describe('when the call records database is unreachable', () => {
  it('transfers still go, the instance stays ready, and /health/ready and /metrics say records are failing', async () => {
    const records = new PostgresCallRecords({ connectionString: `postgres://test@127.0.0.1:${await freePort()}/postgres` });
    const h = await startPolicyHarness({ records });
    try {
      const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ ticket: ticket('1.01') }) });
      expect(res.statusCode).toBe(202);
      await expect.poll(async () => (await h.service.get(res.json().transfer.id)).state).toBe('bridged');
      const ready = await h.app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json().checks).toContainEqual({ name: 'call-records', healthy: false, detail: expect.stringContaining('postgresql') });
      // The records wait for the store rather than being given up.
      await expect
        .poll(async () => (await h.app.inject({ url: '/metrics', headers: auth('supervisor') })).body, { timeout: 5000 })
        .toMatch(/linkage_call_record_writes_pending [1-9]/);
      const metrics = (await h.app.inject({ url: '/metrics', headers: auth('supervisor') })).body;
      expect(metrics).toContain('linkage_dependency_up{dependency="call-records"} 0');
      expect(metrics).toContain('linkage_call_record_writes_dropped_total 0');
      const query = await h.app.inject({ url: '/v1/transfers', headers: auth('supervisor') });
      expect([query.statusCode, query.json().error.code]).toEqual([503, 'store_unavailable']);
    } finally {
      await h.close();
      await records.close();
    }
  });
});

describe('when PostgreSQL goes away and comes back', () => {
  it('holds the call records written meanwhile and stores them all, in order, once it is back', async () => {
    const postgres = await startPostgres();
    const proxy = await startProxy(Number(new URL(postgres.url).port));
    const url = new URL(postgres.url);
    url.port = String(proxy.port);
    const records = new PostgresCallRecords({ connectionString: url.toString() });
    await records.migrate();
    const h = await startPolicyHarness({ records });
    try {
      const press = async () => {
        const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ ticket: ticket('1.01') }) });
        const id = res.json().transfer.id as string;
        await expect.poll(async () => (await h.service.get(id)).state).toBe('bridged');
        return id;
      };
      const before = await press();
      await expect.poll(async () => (await records.get(before))?.state).toBe('bridged');

      proxy.cut();
      const during = [await press(), await press()];
      const pending = async () => (await h.app.inject({ url: '/metrics', headers: auth('supervisor') })).body;
      await expect.poll(pending).toMatch(/linkage_call_record_writes_pending [1-9]/);
      await new Promise((r) => setTimeout(r, 2_500)); // an outage of a few seconds, as a restart is

      proxy.restore();
      await expect.poll(async () => Promise.all(during.map(async (id) => (await records.get(id))?.state)), { timeout: 15_000 }).toEqual([
        'bridged',
        'bridged',
      ]);
      // Every transition of the two, as for the transfer stored before the outage.
      const events = async (id: string) => (await records.get(id))?.transitions.map((t) => t.event);
      await expect.poll(() => events(before)).toContain('party-left');
      for (const id of during) await expect.poll(() => events(id)).toEqual(await events(before));
      const metrics = await pending();
      expect(metrics).toContain('linkage_call_record_writes_pending 0');
      expect(metrics).toContain('linkage_call_record_writes_dropped_total 0');
    } finally {
      await h.close();
      await records.close();
      await proxy.close();
      await postgres.stop();
    }
  }, 60_000);
});

describe('the linkage policy over HTTP (real Redis and PostgreSQL)', () => {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let h: PolicyHarness;
  let records: PostgresCallRecords;
  beforeAll(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    records = new PostgresCallRecords({ connectionString: postgres.url });
    await records.migrate();
    h = await startPolicyHarness({ redisUrl: redis.url, records });
  }, 30_000);
  afterAll(async () => {
    await h?.close();
    await records?.close();
    await Promise.allSettled([redis?.stop(), postgres?.stop()]);
  });

  it('records transfers durably, pages them, exports CSV and NDJSON, and sums the day per direction', async () => {
    const ids: string[] = [];
    for (const categoryCode of ['1.01', '1.02', '1.03']) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ ticket: ticket(categoryCode) }) });
      ids.push(res.json().transfer.id);
    }
    h.callControl.answers.set('sw110', { fail: 'busy', cause: 'USER_BUSY' });
    h.callControl.answers.set('sw110-backup', { fail: 'busy', cause: 'USER_BUSY' });
    const failed = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody({ ticket: ticket('1.04') }) });
    ids.push(failed.json().transfer.id);
    await expect.poll(async () => (await records.get(ids[3]!))?.outcome, { timeout: 5000 }).toBe('failed');
    await expect.poll(async () => (await records.get(ids[2]!))?.outcome, { timeout: 5000 }).toBe('connected');

    const page1 = await h.app.inject({ url: '/v1/transfers?direction=12345-110&limit=3', headers: auth('supervisor') });
    expect(page1.json().records).toHaveLength(3);
    const page2 = await h.app.inject({ url: `/v1/transfers?direction=12345-110&limit=3&cursor=${page1.json().next}`, headers: auth('supervisor') });
    expect(page2.json().records).toHaveLength(1);
    expect(page2.json().next).toBeNull();
    const badCursor = await h.app.inject({ url: '/v1/transfers?cursor=bm9wZQ', headers: auth('supervisor') });
    expect([badCursor.statusCode, badCursor.json().error.code]).toEqual([400, 'invalid_request']);
    const badDay = await h.app.inject({ url: '/v1/summary?day=2026-13-45', headers: auth('supervisor') });
    expect([badDay.statusCode, badDay.json().error.code]).toEqual([400, 'invalid_request']);
    const byState = await h.app.inject({ url: '/v1/transfers?state=failed', headers: auth('supervisor') });
    expect(byState.json().records.map((r: { transferId: string; trunkFallbacks: number }) => [r.transferId, r.trunkFallbacks])).toEqual([[ids[3], 1]]);

    const csv = await h.app.inject({ url: '/v1/transfers/export?format=csv&category=1', headers: auth('supervisor') });
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toMatch(/^transferId,kind,ticketId,from,to,/);
    expect(lines).toHaveLength(5);
    expect(csv.body).not.toContain('13800138000');
    const ndjson = await h.app.inject({ url: '/v1/transfers/export?desk=110', headers: auth('supervisor') });
    const parsed = ndjson.body.trim().split('\n').map((l) => JSON.parse(l) as { transferId: string; transitions: unknown[] });
    expect(parsed.map((r) => r.transferId).sort()).toEqual([...ids].sort());
    expect(parsed.every((r) => r.transitions.length >= 3)).toBe(true);
    const agentExport = await h.app.inject({ url: '/v1/transfers/export', headers: auth('agent') });
    expect(agentExport.statusCode).toBe(403);

    const day = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    const summary = await h.app.inject({ url: `/v1/summary?day=${day}`, headers: auth('supervisor') });
    const row = summary.json().desks.find((d: { direction: string }) => d.direction === '12345-110');
    expect(row).toMatchObject({ transfers: 4, connected: 3, successRate: 0.75, humanAnswerRate: null });
    expect(row.connectMedianMs).toBeGreaterThanOrEqual(0);

    const ready = await h.app.inject({ url: '/health/ready' });
    expect(ready.json().checks).toContainEqual({ name: 'call-records', healthy: true, detail: 'call records in postgresql' });
    const metrics = (await h.app.inject({ url: '/metrics', headers: auth('supervisor') })).body;
    expect(metrics).toMatch(/linkage_transfers_total\{direction="12345-110",mode="blind",outcome="failed",basis="list"\} 1/);
    expect(metrics).toMatch(/linkage_trunk_fallbacks_total\{direction="12345-110"\} 1/);
    expect(metrics).toMatch(/linkage_key_press_to_answer_seconds_count\{direction="12345-110",priority="normal"\} 3/);
  });

  it('records a redirect that only advised the caller, and finds it by its ticket', async () => {
    const { to: _to, ...power } = transferBody({ ticket: ticket('4.01.01') });
    const advised = await h.app.inject({ method: 'POST', url: '/v1/redirects', headers: auth('agent'), payload: power });
    expect(advised.statusCode).toBe(201);
    const recordId = advised.json().recordId as string;
    expect(await records.get(recordId)).toMatchObject({ kind: 'redirect', outcome: 'advised', to: 'power', ticketId: power.ticket.ticketId });
    expect((await records.byTicket(power.ticket.ticketId)).map((r) => r.transferId)).toEqual([recordId]);
    const listed = await h.app.inject({ url: '/v1/transfers?state=advised', headers: auth('supervisor') });
    expect(listed.json().records.map((r: { transferId: string }) => r.transferId)).toContain(recordId);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decideRouting, type RoutingInput } from '../../src/domain/routing-decision.js';
import { parseRoutingList, resolveCategory, type RoutingList } from '../../src/domain/routing-list.js';
import { GUILIN_LIST, POLICY_DESKS, URUMQI_LIST } from '../support/policy-harness.js';

const desks = [...Object.keys(POLICY_DESKS), 'expert-119', 'expert-120', 'expert-122'];
function load(file: string): RoutingList {
  const result = parseRoutingList(JSON.parse(readFileSync(file, 'utf8')), desks);
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.list;
}
const guilin = load(GUILIN_LIST);
const urumqi = load(URUMQI_LIST);

const input = (over: Partial<RoutingInput>): RoutingInput => ({
  from: '12345',
  to: '110',
  categoryCode: '1.01',
  emergencyPriority: false,
  danger: false,
  harassment: null,
  reason: null,
  unlisted: 'allow',
  ...over,
});

describe('the Guilin routing list', () => {
  it('holds every category and sub-category of the seed list, in its four sections', () => {
    const bySection = Object.fromEntries(
      ['12345-to-110', '110-to-12345', 'other-hotline', 'utility'].map((s) => [s, guilin.categories.filter((c) => c.section === s)]),
    );
    expect(bySection['12345-to-110']?.map((c) => c.name)).toEqual([
      '刑事类警情', '治安类警情', '道路交通类警情', '群体性事件及违法犯罪报警', '紧急求助', '警务投诉',
    ]);
    expect(bySection['110-to-12345']?.map((c) => c.name)).toEqual([
      '卫生医疗', '劳动和社会保障', '林水管理', '市场监督管理', '民政救助', '公共设施', '文广管理', '环保管理', '市容管理',
      '施工管理', '食品药品监管', '安全生产监督', '农林绿化', '文旅管理', '交通运输', '住房城乡建设', '海事管理', '其他纠纷类',
    ]);
    expect(bySection['other-hotline']?.map((c) => c.name)).toEqual(['烟草警情', '水上遇险搜救', '司法联动']);
    expect(bySection['utility']?.map((c) => c.name)).toEqual(['电力抢修', '水气热抢修', '通信抢修', '开锁联动']);
    expect(guilin.categories.find((c) => c.name === '市容管理')?.subcategories.map((s) => s.name)).toEqual([
      '垃圾清运', '道路清扫', '污水漫溢', '违章搭建', '违章设摊', '占道经营', '违章停车',
    ]);
  });

  it('resolves every category and every sub-category, by code and by name', () => {
    let count = 0;
    for (const category of guilin.categories) {
      for (const key of [category.code, category.name, ...category.subcategories.flatMap((s) => [s.code, s.name])]) {
        const resolved = resolveCategory(guilin, key);
        expect(resolved?.category.code, key).toBe(category.code);
        count += 1;
      }
    }
    expect(count).toBeGreaterThan(200);
    expect(resolveCategory(guilin, '电梯故障')?.resolution).toEqual({ kind: 'desk', desk: '12345' });
    expect(resolveCategory(guilin, '3.01')?.resolution).toMatchObject({ kind: 'redirect', via: 'hotline', numbers: ['12313'], action: 'transfer' });
    expect(resolveCategory(guilin, '停电')?.resolution).toMatchObject({ kind: 'redirect', via: 'utility', numbers: ['95598'], action: 'advise' });
  });

  it('differs from the Urumqi list, which sends fire to the 119 specialist seat', () => {
    expect(resolveCategory(urumqi, '火灾')?.resolution).toEqual({ kind: 'desk', desk: 'expert-119' });
    expect(resolveCategory(guilin, '火灾')).toBeNull();
    expect(resolveCategory(urumqi, '溺水')?.resolution).toEqual({ kind: 'desk', desk: '110' });
  });
});

describe('validating a routing list', () => {
  const raw = () => JSON.parse(readFileSync(GUILIN_LIST, 'utf8')) as { categories: Record<string, unknown>[]; hotlines: Record<string, unknown> };

  it('names the path and the reason of each problem', () => {
    const bad = raw();
    bad.categories[0]!.route = { kind: 'desk', desk: '999' };
    bad.categories[1]!.code = bad.categories[2]!.code;
    (bad.categories[20] as { route: unknown }).route = { kind: 'hotline', hotline: '12399' };
    const structural = parseRoutingList(bad, desks);
    expect(structural.ok).toBe(false);
    expect(!structural.ok && structural.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^categories\.2\.code: code 1\.03 is used twice/), expect.stringMatching(/^categories\.20\.route\.hotline: no hotline 12399/)]),
    );
    const fixed = raw();
    fixed.categories[0]!.route = { kind: 'desk', desk: '999' };
    const desksResult = parseRoutingList(fixed, desks);
    expect(!desksResult.ok && desksResult.problems).toEqual(['categories.0.route.desk: desk 999 is not configured in desks']);
  });

  it('refuses a utility route naming no configured utility', () => {
    const bad = raw() as { categories: Record<string, unknown>[] };
    const index = bad.categories.findIndex((c) => (c.route as { kind: string }).kind === 'utility');
    bad.categories[index]!.route = { kind: 'utility', utility: 'gas-9' };
    const result = parseRoutingList(bad, desks);
    expect(!result.ok && result.problems).toEqual([`categories.${index}.route.utility: no utility gas-9 in utilities`]);
  });

  it('refuses a transfer action without a desk to dial', () => {
    const bad = raw();
    bad.hotlines['12313'] = { name: '烟草', number: '12313', action: 'transfer' };
    const result = parseRoutingList(bad, desks);
    expect(!result.ok && result.problems).toEqual(['hotlines.12313.desk: a transfer action names the desk to dial']);
  });
});

describe('the routing decision', () => {
  it('when the list gives the category to the target, allows it on the list', () => {
    const v = decideRouting(guilin, input({ categoryCode: '1.02' }));
    expect(v).toMatchObject({ ok: true, to: '110', emergency: false, routing: { basis: 'list', listedOwner: '110' } });
  });

  it('when the category belongs to another desk, refuses with category_owned_elsewhere', () => {
    const v = decideRouting(guilin, input({ from: '110', to: '12345', categoryCode: '1.01' }));
    expect(v).toMatchObject({ ok: false, code: 'category_owned_elsewhere', details: { owner: '110', requested: '12345' } });
    const back = decideRouting(guilin, input({ categoryCode: '2.09.07' })); // 违章停车 → 12345
    expect(back).toMatchObject({ ok: false, code: 'category_owned_elsewhere', details: { owner: '12345' } });
  });

  it('when the agent gives a reason, allows it and records the reason', () => {
    const v = decideRouting(guilin, input({ categoryCode: '2.09.07', reason: '车辆堵住消防通道，现场有冲突' }));
    expect(v).toMatchObject({ ok: true, to: '110', routing: { basis: 'override', overrideReason: '车辆堵住消防通道，现场有冲突', listedOwner: '12345' } });
  });

  it('never refuses danger to life, property or public safety: every category goes to 110 with emergency priority', () => {
    const codes = guilin.categories.flatMap((c) => [c.code, ...c.subcategories.map((s) => s.code)]).concat(['unknown-9']);
    for (const categoryCode of codes) {
      for (const to of ['12345', '12313', '12348', '110']) {
        const v = decideRouting(guilin, input({ from: '12345', to, categoryCode, danger: true }));
        expect(v, `${categoryCode} → ${to}`).toMatchObject({ ok: true, to: '110', emergency: true, routing: { basis: 'danger' } });
      }
    }
  });

  it('refuses to move danger away from 110: 110 dispatches it itself', () => {
    const v = decideRouting(guilin, input({ from: '110', to: '12345', categoryCode: '2.09.07', danger: true }));
    expect(v).toMatchObject({ ok: false, code: 'danger_already_at_emergency_desk', details: { desk: '110' } });
  });

  it('keeps an emergency service as the target when the danger is theirs (fire to 119)', () => {
    expect(decideRouting(guilin, input({ to: '119', danger: true, categoryCode: '2.12.01' }))).toMatchObject({ ok: true, to: '119', emergency: true });
  });

  it('never refuses an emergency-priority transfer by the list', () => {
    for (const category of guilin.categories) {
      const v = decideRouting(guilin, input({ from: '110', to: '12345', categoryCode: category.code, emergencyPriority: true }));
      expect(v, category.code).toMatchObject({ ok: true, to: '12345', emergency: true, routing: { basis: 'emergency' } });
    }
  });

  it('sends a harassment call to 110 with its own reason, whatever the category', () => {
    const v = decideRouting(guilin, input({ to: '12348', categoryCode: '2.18.02', harassment: 'threatening' }));
    expect(v).toMatchObject({ ok: true, to: '110', routing: { basis: 'harassment', harassment: 'threatening' } });
  });

  it('for a redirect category, allows a transfer to the hotline and refuses a desk transfer', () => {
    expect(decideRouting(guilin, input({ to: '12313', categoryCode: '3.01' }))).toMatchObject({
      ok: true,
      routing: { basis: 'redirect', redirect: { via: 'hotline', id: '12313', action: 'transfer' } },
    });
    expect(decideRouting(guilin, input({ to: '110', categoryCode: '4.01.01' }))).toMatchObject({
      ok: false,
      code: 'category_redirected',
      details: { action: 'advise', numbers: ['95598'] },
    });
  });

  it('for a redirect category, allows a desk transfer with the agent\'s reason, recording the redirect it overrode', () => {
    expect(decideRouting(guilin, input({ to: '110', categoryCode: '4.01.01', reason: '抢修人员到场后与住户发生冲突' }))).toMatchObject({
      ok: true,
      to: '110',
      routing: { basis: 'override', overrideReason: '抢修人员到场后与住户发生冲突', redirect: { via: 'utility', action: 'advise' } },
    });
  });

  it('allows an unlisted category, or refuses it when the policy says so', () => {
    expect(decideRouting(guilin, input({ categoryCode: '0301' }))).toMatchObject({ ok: true, routing: { basis: 'unlisted' } });
    expect(decideRouting(guilin, input({ categoryCode: '0301', unlisted: 'refuse' }))).toMatchObject({ ok: false, code: 'category_unlisted' });
  });
});

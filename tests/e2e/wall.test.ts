// The wall and the seat's screen pop in a real browser: Debian's chromium driven by playwright-core.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NuisanceMark } from '../../src/domain/routing-decision.js';
import { summarise } from '../../src/domain/transfer.js';
import { KEYS, startHarness, transferBody, type Harness } from '../support/harness.js';
import { aTransfer } from '../support/transfer-fixture.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
const mustRun = Boolean(process.env.CI);
if (!present && !mustRun) {
  console.warn(
    `[wall e2e] skipped: no chromium at ${CHROMIUM} (apt-get install -y chromium); on CI (CI set) it must run`,
  );
}
const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const WHOLE = '13800138000';

describe.skipIf(!present && !mustRun)('the wall page in headless Chromium', () => {
  let h: Harness;
  let base: string;
  let profile: string;
  let browser: BrowserContext;

  beforeAll(async () => {
    h = await startHarness();
    base = await h.listen();
    profile = mkdtempSync(join(tmpdir(), 'hl-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1600, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const transferThroughApi = async (overrides: Parameters<typeof transferBody>[0] = {}) => {
    const res = await fetch(`${base}/v1/transfers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.agent}`, 'content-type': 'application/json' },
      body: JSON.stringify(transferBody(overrides)),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { transfer: { id: string } }).transfer;
  };
  const live = (page: Page) => page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
  /**
   * This harness has no linkage policy: a marked transfer's transition is put on its bus as the service
   * would publish it (the policy's own path is tested in compose.test.ts).
   */
  const publishMarked = async (step: {
    state: 'dialing' | 'ringing';
    from: 'dialing';
    event: 'nuisance-checked' | 'target-ringing';
    version: number;
    nuisance: NuisanceMark;
    ticketId?: string;
  }) => {
    const now = new Date().toISOString();
    const transfer = aTransfer({
      state: step.state,
      version: step.version,
      targetLegId: 'leg-1',
      createdAt: now,
      updatedAt: now,
      ...(step.ticketId ? { ticketId: step.ticketId } : {}),
      routing: {
        basis: 'list', requestedTo: '110', categoryCode: '1.02', categoryName: null, listedOwner: '110',
        overrideReason: null, danger: false, harassment: null, redirect: null, nuisance: step.nuisance,
      },
    });
    await h.bus.publish({
      kind: 'transition',
      transfer: summarise(transfer),
      record: { transferId: transfer.id, at: now, from: step.from, to: step.state, event: step.event, version: step.version },
    });
    return transfer;
  };

  it('shows a transfer made through the API as it rings, masked, with the counts and the switch, and reconnects by itself', async () => {
    h.callControl.answers.set('sw110', 'ring-only');
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${base}/wall#token=${KEYS.supervisor}`);
    await live(page);
    expect(page.url()).not.toContain(KEYS.supervisor); // the key leaves the address bar

    const made = await transferThroughApi();
    const row = page.locator(`tr[data-transfer-id="${made.id}"]`);
    await row.locator('td.state[data-state="ringing"]').waitFor({ timeout: 10_000 });
    expect(await row.locator('td.direction').textContent()).toBe('12345 → 110');
    expect(await row.locator('td.caller').textContent()).toBe('138****8000');
    expect(await row.locator('td.category').textContent()).toBe('0301');
    expect(await row.locator('td.state').textContent()).toContain('振铃');
    expect(await row.locator('td.mode').textContent()).toContain('blind');
    await expect.poll(() => page.locator('#count-requested').textContent()).toBe('1');
    await expect.poll(() => page.locator('#count-live').textContent()).toBe('1');
    expect(await page.locator('#switches li[data-switch-id="test-switch"]').getAttribute('data-state')).toBe(
      'connected',
    );

    // A failure of the day is counted and listed.
    h.callControl.answers.set('sw119', { fail: 'rejected', cause: 'CALL_REJECTED' });
    await transferThroughApi({ to: '119' });
    await expect.poll(() => page.locator('#count-failed').textContent()).toBe('1');
    await expect.poll(() => page.locator('#failure-list li').first().textContent()).toContain('12345 → 119');

    await page.screenshot({ path: join(ARTIFACTS, 'wall.png'), fullPage: true });

    // The instance drops every feed client (as on a restart): the page comes back by itself and resumes.
    h.feed.disconnectAll('test: going away');
    await page.locator('#connection[data-state="disconnected"]').waitFor({ timeout: 5000 });
    await live(page);
    h.callControl.answers.set('sw110', 'ring-only');
    const later = await transferThroughApi({ mode: 'three-way' });
    await page
      .locator(`tr[data-transfer-id="${later.id}"] td.state[data-state="ringing"]`)
      .waitFor({ timeout: 10_000 });
    expect(await page.locator(`tr[data-transfer-id="${later.id}"] td.mode`).textContent()).toContain('三方');

    expect(await page.content()).not.toContain(WHOLE);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("marks a flagged caller's row with the nuisance mark the feed carries", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${base}/wall#token=${KEYS.supervisor}`);
    await live(page);
    const marked = await publishMarked({
      state: 'dialing', from: 'dialing', event: 'nuisance-checked', version: 4,
      nuisance: { flagged: 'threatening', recentCalls: 2, repeated: false },
    });
    const badge = page.locator(`tr[data-transfer-id="${marked.id}"] td.caller .nuisance`);
    await badge.waitFor({ timeout: 10_000 });
    expect(await badge.textContent()).toBe('⚠ 扬言恐吓 threatening');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("the seat example's screen pop shows a repeat caller's mark", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${base}/seat#token=${KEYS.seat}&desk=110&seat=S-110-03`);
    await live(page);
    const now = new Date().toISOString();
    const { ticket } = transferBody();
    await h.tickets.put(
      { ...ticket, sourceDesk: '12345', callerNumber: WHOLE, agentId: 'A1001', seatId: 'S07', createdAt: now },
      600,
    );
    const ringing = await publishMarked({
      state: 'ringing', from: 'dialing', event: 'target-ringing', version: 5, ticketId: ticket.ticketId,
      nuisance: { flagged: null, recentCalls: 7, repeated: true },
    });
    const card = page.locator(`article[data-transfer-id="${ringing.id}"]`);
    await card.waitFor({ timeout: 10_000 });
    expect(await card.locator('.nuisance').textContent()).toBe('骚扰标记 Nuisance: ⚠ 反复来电 calls again and again (7)');
    expect(await card.locator('.caller').textContent()).toContain(WHOLE);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("the seat example pops the ringing call's ticket with the whole number", async () => {
    h.callControl.answers.set('sw110', 'ring-only');
    const page = await browser.newPage();
    await page.goto(`${base}/seat#token=${KEYS.seat}&desk=110&seat=S-110-03`);
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
    const made = await transferThroughApi();
    const card = page.locator(`article[data-transfer-id="${made.id}"]`);
    await card.waitFor({ timeout: 10_000 });
    expect(await card.textContent()).toContain(WHOLE);
    expect(await card.textContent()).toContain('王先生');
    await page.screenshot({ path: join(ARTIFACTS, 'screen-pop.png') });
    await page.close();
  }, 60_000);
});

// The wall: live transfers and bridges, counts and failures of the day, the switches' state.
// Everything shown comes from the supervisor feed, so the caller's number is already masked.
import { connectFeed, nuisanceLabel, tokenFromPage } from './feed-client.js';

const STATES = {
  requested: ['已请求', 'requested'],
  'stub-stored': ['工单已存', 'ticket stored'],
  dialing: ['呼叫中', 'dialling'],
  ringing: ['振铃', 'ringing'],
  answered: ['已应答', 'answered'],
  bridged: ['已转接', 'bridged'],
  conferenced: ['三方通话', 'three-way'],
  completed: ['已结束', 'completed'],
  cancelled: ['已取消', 'cancelled'],
  failed: ['失败', 'failed'],
  rejected: ['被拒绝', 'rejected'],
};
const MODES = { blind: ['直接转接', 'blind'], 'three-way': ['三方', 'three-way'] };
const SWITCH_STATES = {
  connected: '已连接 connected',
  connecting: '连接中 connecting',
  disconnected: '断开 disconnected',
  'auth-failed': '认证失败 auth failed',
};
const TERMINAL = new Set(['completed', 'cancelled', 'failed', 'rejected']);
const ENDED_SHOWN_MS = 5000;

const $ = (id) => document.getElementById(id);
const transfers = new Map(); // id → { view, endedAt }
const switches = new Map();
let drawQueued = false;

function bilingual(pair) {
  const span = document.createElement('span');
  span.append(`${pair[0]} `);
  const en = document.createElement('span');
  en.className = 'en';
  en.textContent = pair[1];
  span.append(en);
  return span;
}

function duration(fromIso) {
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(fromIso)) / 1000));
  const m = Math.floor(seconds / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function upsert(view) {
  const known = transfers.get(view.id);
  if (known && known.view.version >= view.version) return; // a snapshot and a delta may overlap
  transfers.set(view.id, { view, endedAt: TERMINAL.has(view.state) ? Date.now() : null });
  queueDraw();
}

function queueDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(draw);
}

function draw() {
  drawQueued = false;
  const now = Date.now();
  const rows = [];
  let live = 0;
  for (const [id, entry] of transfers) {
    if (entry.endedAt !== null && now - entry.endedAt > ENDED_SHOWN_MS) {
      transfers.delete(id);
      continue;
    }
    if (entry.endedAt === null) live += 1;
    rows.push(entry);
  }
  rows.sort((a, b) =>
    a.view.priority === b.view.priority
      ? a.view.createdAt.localeCompare(b.view.createdAt)
      : a.view.priority === 'emergency'
        ? -1
        : 1,
  );
  const body = $('live-rows');
  body.replaceChildren(
    ...rows.map(({ view, endedAt }) => {
      const tr = document.createElement('tr');
      tr.dataset.transferId = view.id;
      if (view.priority === 'emergency') tr.classList.add('emergency');
      if (endedAt !== null) tr.classList.add('ended');
      const cell = (content, className) => {
        const td = document.createElement('td');
        if (className) td.className = className;
        td.append(content);
        tr.append(td);
        return td;
      };
      cell(`${view.direction.from} → ${view.direction.to}`, 'direction');
      cell(bilingual(MODES[view.mode] ?? [view.mode, view.mode]), 'mode');
      cell(bilingual(STATES[view.state] ?? [view.state, view.state]), 'state').dataset.state = view.state;
      cell(duration(view.createdAt), 'duration');
      cell(view.category ?? '—', 'category');
      const caller = cell(view.callerId, 'caller');
      const mark = nuisanceLabel(view.nuisance);
      if (mark) {
        const badge = document.createElement('span');
        badge.className = 'nuisance';
        badge.textContent = mark;
        caller.append(' ', badge);
      }
      return tr;
    }),
  );
  $('empty').hidden = rows.length > 0;
  $('count-live').textContent = String(live);
}

function drawSwitches() {
  const list = $('switches');
  if (switches.size === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = '无 none';
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(
    ...[...switches.values()].map((s) => {
      const li = document.createElement('li');
      li.dataset.state = s.state;
      li.dataset.switchId = s.switchId;
      li.textContent = `${s.switchId} (${s.desk}) ${SWITCH_STATES[s.state] ?? s.state}`;
      return li;
    }),
  );
}

function drawStats(stats) {
  if (!stats) return;
  $('count-requested').textContent = String(stats.requested);
  $('count-connected').textContent = String(stats.connected);
  $('count-failed').textContent = String(stats.failed);
  $('count-cancelled').textContent = String(stats.cancelled);
  $('failure-list').replaceChildren(
    ...stats.recentFailures.map((f) => {
      const li = document.createElement('li');
      const time = new Date(f.at).toLocaleTimeString('zh-CN', { hour12: false });
      li.textContent = `${time}  ${f.direction.from} → ${f.direction.to}  ${f.reason}  ${f.callerId}  ${f.category ?? ''}`;
      return li;
    }),
  );
}

function drawStore(store) {
  const banner = $('store');
  banner.dataset.healthy = String(store.healthy);
  banner.textContent = store.healthy ? '' : `存储不可用 Store unavailable: ${store.detail}`;
}

function onMessage(message) {
  switch (message.type) {
    case 'snapshot':
      transfers.clear();
      for (const view of message.transfers) upsert(view);
      switches.clear();
      for (const s of message.switches) switches.set(s.switchId, s);
      drawSwitches();
      drawStats(message.stats);
      drawStore(message.store ?? { healthy: true });
      queueDraw();
      break;
    case 'transfer':
      upsert(message.transfer);
      break;
    case 'switch':
      switches.set(message.status.switchId, message.status);
      drawSwitches();
      break;
    case 'store':
      drawStore(message);
      break;
    case 'stats':
      drawStats(message.stats);
      break;
    default:
      break; // heartbeat, hello, resumed, resync, and kinds added later
  }
}

function onState(state, detail) {
  const badge = $('connection');
  badge.dataset.state = state;
  const words = {
    connecting: ['连接中', 'connecting'],
    live: ['实时', 'live'],
    disconnected: ['已断开，重连中', 'reconnecting'],
  }[state];
  badge.replaceChildren(bilingual(words));
  if (detail?.code) badge.title = `close ${detail.code} ${detail.reason ?? ''}`;
}

function start(token) {
  $('login').hidden = true;
  connectFeed({ token, onMessage, onState });
}

setInterval(() => {
  $('clock').textContent = new Date().toLocaleTimeString('zh-CN', { hour12: false });
  queueDraw();
}, 1000);

const STORAGE_KEY = 'hotline-wall-key';
const token = tokenFromPage(STORAGE_KEY);
if (token) start(token);
else {
  $('login').hidden = false;
  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key').value.trim();
    localStorage.setItem(STORAGE_KEY, key);
    start(key);
  });
}

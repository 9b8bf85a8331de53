// Example of a receiving seat's softphone: subscribe with the desk and seat id, show the ticket stub
// as the transferred call rings (the caller's whole number is for this seat only), clear it when the
// call is answered or ends. A real softphone does the same with its own UI.
import { connectFeed, nuisanceLabel, tokenFromPage } from './feed-client.js';

const $ = (id) => document.getElementById(id);
const pops = new Map();

function field(label, value, className) {
  const row = document.createElement('div');
  if (className) row.className = className;
  const b = document.createElement('b');
  b.textContent = `${label}: `;
  row.append(b, value ?? '—');
  return row;
}

function show(pop) {
  if (pops.has(pop.transferId)) return;
  const card = document.createElement('article');
  card.className = 'pop';
  card.dataset.transferId = pop.transferId;
  const s = pop.stub;
  const heading = document.createElement('h2');
  heading.textContent = `${pop.transfer.direction.from} → ${pop.transfer.direction.to}  ${pop.transfer.priority === 'emergency' ? '紧急 EMERGENCY' : ''}`;
  card.append(heading);
  const mark = nuisanceLabel(pop.transfer.nuisance);
  if (mark) card.append(field('骚扰标记 Nuisance', mark, 'nuisance'));
  if (s) {
    card.append(
      field('来电号码 Caller', s.callerNumber ?? '未显示 withheld', 'caller'),
      field('姓名 Name', s.callerName),
      field('工单 Ticket', `${s.ticketId} (${s.kind})`),
      field('类别 Category', s.categoryCode),
      field('紧急程度 Urgency', s.urgency),
      field('地点 Location', s.location),
      field('诉求 Summary', s.summary),
      field('转出坐席 From agent', `${s.agentId} / ${s.seatId}`),
    );
  } else {
    // The stub could not be read by the feed: fetch it with GET /v1/tickets/{ticketId}.
    card.append(field('工单 Ticket', pop.transfer.ticketId), field('来电号码 Caller', pop.transfer.callerId));
  }
  pops.set(pop.transferId, card);
  $('pops').prepend(card);
  $('idle').hidden = true;
}

function end(transferId, state) {
  const card = pops.get(transferId);
  if (!card) return;
  card.classList.add('ended');
  card.append(field('结果 Outcome', state));
  setTimeout(() => {
    card.remove();
    pops.delete(transferId);
    $('idle').hidden = pops.size > 0;
  }, 5000);
}

function start(token, seat) {
  $('login').hidden = true;
  $('who').textContent = `${seat.desk} / ${seat.seatId}`;
  connectFeed({
    token,
    seat,
    onState: (state) => {
      $('connection').dataset.state = state;
      $('connection').textContent = state;
    },
    onMessage: (message) => {
      if (message.type === 'snapshot') message.pops.forEach(show);
      else if (message.type === 'screen-pop') show(message.pop);
      else if (message.type === 'screen-pop-end') end(message.transferId, message.state);
    },
  });
}

const token = tokenFromPage('hotline-seat-key');
const params = new URLSearchParams(location.hash.slice(1));
const desk = params.get('desk');
const seatId = params.get('seat');
if (token && desk && seatId) start(token, { desk, seatId });
else {
  $('login').hidden = false;
  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    localStorage.setItem('hotline-seat-key', $('key').value.trim());
    start($('key').value.trim(), { desk: $('desk').value.trim(), seatId: $('seat').value.trim() });
  });
}

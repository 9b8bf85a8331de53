// A small browser client for the live feed (protocol: src/feed/README.md). It authenticates with the
// API key as a websocket subprotocol, resumes from the last sequence it saw after a reconnect, and
// reconnects by itself with backoff; a silent connection (no frame for two heartbeats) is abandoned.
export const SUBPROTOCOL = 'hotline-feed.v1';

export function feedUrl(path = '/v1/feed') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

/**
 * connectFeed({ token, seat?, onMessage(message), onState(state, detail) }) → { close() }
 * state: 'connecting' | 'live' | 'disconnected'
 */
export function connectFeed({ url = feedUrl(), token, seat, onMessage, onState = () => {} }) {
  let ws = null;
  let lastSeq = null;
  let heartbeatMs = 15000;
  let attempts = 0;
  let watchdog = null;
  let retry = null;
  let stopped = false;

  // Leaves the current socket (whatever its state) and plans the next attempt. A silent connection is
  // abandoned here rather than waiting for the browser's close handshake, which a dead peer never ends.
  const lose = (detail) => {
    clearTimeout(watchdog);
    const old = ws;
    ws = null;
    if (old) {
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try {
        old.close(4000, 'reconnecting');
      } catch {
        // already closed
      }
    }
    onState('disconnected', detail);
    if (stopped) return;
    // Full jitter so a wall of screens does not reconnect in step after a restart.
    const ceiling = Math.min(30000, 500 * 2 ** attempts);
    attempts += 1;
    clearTimeout(retry);
    retry = setTimeout(open, ceiling / 2 + Math.random() * (ceiling / 2));
  };

  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(
      () => lose({ code: 4000, reason: 'no frame for two heartbeats' }),
      heartbeatMs * 2 + 1000,
    );
  };

  const open = () => {
    onState('connecting');
    const socket = new WebSocket(url, [SUBPROTOCOL, `bearer.${token}`]);
    ws = socket;
    arm(); // a handshake that hangs counts as silence too
    socket.onopen = () => {
      const subscribe = { v: 1, type: 'subscribe', since: lastSeq };
      if (seat) subscribe.seat = seat;
      socket.send(JSON.stringify(subscribe));
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.v !== 1) return;
      arm();
      if (message.type === 'hello') heartbeatMs = message.heartbeatMs;
      if (typeof message.seq === 'string') lastSeq = message.seq;
      if (message.type === 'snapshot' || message.type === 'resumed') {
        attempts = 0;
        onState('live');
      }
      onMessage(message);
    };
    socket.onclose = (event) => lose({ code: event.code, reason: event.reason });
  };

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(retry);
      clearTimeout(watchdog);
      const old = ws;
      ws = null;
      if (old) {
        old.onclose = null;
        old.close(1000, 'closed by the page');
      }
    },
  };
}

/** The API key: from the URL fragment (#token=…, never sent to the server), else remembered. */
export function tokenFromPage(storageKey) {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get('token');
  if (fromHash) {
    localStorage.setItem(storageKey, fromHash);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    return fromHash;
  }
  return localStorage.getItem(storageKey);
}

const NUISANCE_KINDS = {
  malicious: '恶意骚扰 malicious',
  threatening: '扬言恐吓 threatening',
  drunk: '疑似醉酒 drunk',
  repeated: '反复滋扰 repeated',
};

/** The caller's nuisance mark as the wall and the screen pop show it, or null when there is none. */
export function nuisanceLabel(nuisance) {
  if (!nuisance) return null;
  if (nuisance.flagged) return `⚠ ${NUISANCE_KINDS[nuisance.flagged] ?? nuisance.flagged}`;
  if (nuisance.repeated) return `⚠ 反复来电 calls again and again (${nuisance.recentCalls})`;
  return null;
}

import { graphqlWsBrowserBuild } from '../http/graphqlWsBrowser.js';

/**
 * The `/admin` status and command page: plain HTML, a small script, and
 * graphql-ws's own browser build served from node_modules (no CDN). Everything it
 * shows comes from the admin API (`projectorStatus` subscription,
 * `rebuildReadModels`, `cancelRebuild`) with the admin token the operator types in
 * (or passes once in the URL fragment, `#token=…`, which browsers never send to
 * the server). The page and its script are strings here, so a compiled build
 * carries them without copying assets.
 */

/** Where the page and its scripts are served. */
export const ADMIN_PATHS = {
  page: '/admin',
  script: '/admin/admin.js',
  graphqlWs: '/admin/graphql-ws.js',
} as const;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Corkboard admin</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .muted { color: #666; }
  table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
  th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
  th { background: #f5f5f5; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .status { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
  .bad { color: #b00020; } .ok { color: #137333; } .warn { color: #a05a00; }
  progress { width: 24rem; height: 1.2rem; vertical-align: middle; }
  button { font: inherit; padding: .35rem .9rem; margin-right: .5rem; }
  #token-form { margin: 1rem 0; }
  #token { width: 26rem; font-family: monospace; }
  ul { margin: .2rem 0; padding-left: 1.2rem; }
</style>
</head>
<body>
<h1>Corkboard read models</h1>
<div class="muted">Status and commands of the projector, live over the admin API (<code>projectorStatus</code>).</div>
<form id="token-form">
  <label>Admin token <input id="token" type="password" autocomplete="off" placeholder="ADMIN_TOKEN, or the one printed at start"></label>
  <button type="submit">Connect</button>
  <span id="connection" class="muted">not connected</span>
</form>
<section id="panel" hidden>
  <div class="status">
    <span>Active generation</span><span id="generation">-</span>
    <span>Checkpoint / head</span><span id="position">-</span>
    <span>Lag</span><span id="lag">-</span>
    <span>Lease holder</span><span id="lease">-</span>
    <span>Projector loop</span><span id="loop">-</span>
    <span>Change-log follower</span><span id="follower">-</span>
    <span>Gaps detected</span><span id="gaps">-</span>
  </div>
  <h2>Projections</h2>
  <table>
    <thead><tr><th>Projection</th><th>Checkpoint</th><th>Commits behind</th><th>Seconds behind</th><th>Events processed</th><th>Last errors</th></tr></thead>
    <tbody id="projections"></tbody>
  </table>
  <h2>Rebuild</h2>
  <p class="muted">Replays every commit into a fresh generation beside live projection, then switches reads to it at once: no downtime.</p>
  <button id="rebuild" type="button">Rebuild read models</button>
  <button id="cancel" type="button" disabled>Cancel</button>
  <div style="margin-top:.6rem">
    <progress id="progress" max="1" value="0"></progress>
    <span id="percent">0%</span>
    <span id="rebuild-state" class="muted">no rebuild yet</span>
  </div>
  <h2>Recent errors</h2>
  <ul id="errors"><li class="muted">none</li></ul>
</section>
<script src="${ADMIN_PATHS.graphqlWs}"></script>
<script src="${ADMIN_PATHS.script}"></script>
</body>
</html>
`;

const SCRIPT = `'use strict';
(function () {
  var STATUS = 'subscription AdminStatus { projectorStatus { activeGeneration checkpoint head commitsBehind secondsBehind leaseHolder instance gapsDetected' +
    ' loop { state restarts lastError } follower { state restarts lastError }' +
    ' errors { at commit projection message }' +
    ' projections { name checkpoint commitsBehind secondsBehind eventsProcessed errors { at commit message } }' +
    ' rebuild { id state processed total rate etaSeconds error } } }';
  var REBUILD = 'mutation { rebuildReadModels { __typename ... on Error { code message } ... on RebuildReadModelsSuccess { rebuild { id } } } }';
  var CANCEL = 'mutation { cancelRebuild { __typename ... on Error { code message } ... on CancelRebuildSuccess { cancelled } } }';
  var $ = function (id) { return document.getElementById(id); };
  var client = null;
  var token = '';

  function text(id, value, cls) { var el = $(id); el.textContent = value; el.className = cls || ''; }
  function loopText(l) { return l.state.toLowerCase() + (l.restarts ? ' (' + l.restarts + ' restarts)' : '') + (l.lastError ? ' - last error: ' + l.lastError : ''); }

  function render(s) {
    $('panel').hidden = false;
    text('generation', s.activeGeneration);
    text('position', s.checkpoint + ' / ' + s.head);
    text('lag', s.commitsBehind + ' commits, ' + s.secondsBehind.toFixed(1) + ' s', s.commitsBehind > 0 ? 'warn' : 'ok');
    text('lease', (s.leaseHolder || 'nobody') + (s.leaseHolder === s.instance ? ' (this server)' : ''));
    text('loop', loopText(s.loop), s.loop.state === 'RUNNING' ? 'ok' : 'bad');
    text('follower', loopText(s.follower), s.follower.state === 'RUNNING' ? 'ok' : 'bad');
    text('gaps', String(s.gapsDetected), s.gapsDetected ? 'bad' : 'ok');
    var rows = $('projections');
    rows.textContent = '';
    s.projections.forEach(function (p) {
      var tr = document.createElement('tr');
      tr.dataset.projection = p.name;
      [p.name, p.checkpoint, p.commitsBehind, p.secondsBehind.toFixed(1), p.eventsProcessed,
        p.errors.length ? p.errors[p.errors.length - 1].message : '-'].forEach(function (v, i) {
        var td = document.createElement('td');
        td.textContent = String(v);
        if (i > 0 && i < 5) td.className = 'num';
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    var list = $('errors');
    list.textContent = '';
    (s.errors.length ? s.errors.slice().reverse() : [null]).forEach(function (e) {
      var li = document.createElement('li');
      li.textContent = e ? e.at + (e.commit != null ? ' commit ' + e.commit : '') + (e.projection ? ' [' + e.projection + ']' : '') + ': ' + e.message : 'none';
      if (!e) li.className = 'muted';
      list.appendChild(li);
    });
    var r = s.rebuild;
    var running = !!r && r.state === 'RUNNING';
    $('rebuild').disabled = running;
    $('cancel').disabled = !running;
    if (r) {
      var fraction = r.total > 0 ? Math.min(1, r.processed / r.total) : (r.state === 'SUCCEEDED' ? 1 : 0);
      if (r.state === 'SUCCEEDED') fraction = 1;
      $('progress').value = fraction;
      text('percent', Math.floor(fraction * 100) + '%');
      text('rebuild-state', r.state.toLowerCase() + ': ' + r.processed + '/' + r.total + ' commits' +
        (running ? ', ' + Math.round(r.rate) + ' commits/s' + (r.etaSeconds != null ? ', ETA ' + r.etaSeconds.toFixed(1) + ' s' : '') : '') +
        (r.error ? ' - ' + r.error : ''), r.state === 'FAILED' ? 'bad' : 'muted');
      $('rebuild-state').dataset.state = r.state;
    }
  }

  function post(query) {
    return fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
      body: JSON.stringify({ query: query })
    }).then(function (res) { return res.json(); }).then(function (result) {
      var payload = result.data && result.data[Object.keys(result.data)[0]];
      var message = result.errors ? result.errors[0].message : payload && payload.message;
      if (message) text('rebuild-state', message, 'bad');
      return payload;
    });
  }

  function connect() {
    if (client) client.dispose();
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
    client = graphqlWs.createClient({
      url: url,
      lazy: false,
      retryAttempts: Infinity,
      connectionParams: { authorization: 'Bearer ' + token },
      on: {
        connected: function () { text('connection', 'connected', 'ok'); },
        closed: function () { text('connection', 'disconnected, retrying', 'warn'); }
      }
    });
    client.subscribe({ query: STATUS }, {
      next: function (result) {
        if (result.errors) { text('connection', result.errors[0].message, 'bad'); return; }
        render(result.data.projectorStatus);
      },
      error: function (e) {
        // A refused token ends the operation with GraphQL errors (an array).
        if (Array.isArray(e) && e[0] && e[0].extensions && e[0].extensions.code === 'UNAUTHENTICATED') {
          text('connection', 'Admin only: this is not the admin token', 'bad'); return;
        }
        var first = Array.isArray(e) ? e[0] : e;
        text('connection', 'error: ' + (first && first.message ? first.message : (first && first.reason) || 'see console'), 'bad');
      },
      complete: function () {}
    });
  }

  $('token-form').addEventListener('submit', function (event) {
    event.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem('corkboard-admin-token', token);
    connect();
  });
  $('rebuild').addEventListener('click', function () { $('rebuild').disabled = true; post(REBUILD); });
  $('cancel').addEventListener('click', function () { post(CANCEL); });

  var fromHash = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (fromHash) history.replaceState(null, '', location.pathname);
  token = (fromHash && fromHash[1]) || sessionStorage.getItem('corkboard-admin-token') || '';
  if (token) { $('token').value = token; sessionStorage.setItem('corkboard-admin-token', token); connect(); }
})();
`;

/** A static response of the admin page: body, content type. Null for other paths. */
export function adminAsset(pathname: string): { contentType: string; body: string } | null {
  switch (pathname) {
    case ADMIN_PATHS.page:
    case `${ADMIN_PATHS.page}/`:
      return { contentType: 'text/html; charset=utf-8', body: PAGE };
    case ADMIN_PATHS.script:
      return { contentType: 'text/javascript; charset=utf-8', body: SCRIPT };
    case ADMIN_PATHS.graphqlWs:
      return { contentType: 'text/javascript; charset=utf-8', body: graphqlWsBrowserBuild() };
    default:
      return null;
  }
}

/** Headers of every admin asset: no framing, scripts only from this server. */
export const ADMIN_SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

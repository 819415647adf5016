/*
 * app.js - the Lepton console's behaviour, plain JavaScript (no framework, no build step).
 *
 * Every call goes to the console server: /api/<svc>/<path> is proxied to the service (cs,
 * fraud, recommend, diagnosis), query string included (the proxy forwards it); /api/overview
 * gives health and statistics of all four. The status dots in the tabs and the monitoring page
 * refresh from /api/overview every 3 seconds; the monitoring charts are inline SVG drawn here
 * from the last MON_KEEP overviews.
 */
'use strict';

const MON_KEEP = 60; /* overviews kept for the charts (3 minutes at 3 s) */
const POLL_MS = 3000;

const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

/* Create an element: el('div', {class: 'x', text: 'hi'}, [children]). */
function el(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children || []) if (c !== null && c !== undefined)
    e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

/* One call to a service through the proxy. Resolves to the parsed JSON (or null for an empty
 * body); rejects with an Error carrying the service's one-line message. */
async function api(svc, method, path, body, query) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch('/api/' + svc + path + (query ? '?' + query : ''), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
  if (!r.ok) {
    const err = new Error(j && j.error ? j.error.message : 'HTTP ' + r.status);
    err.status = r.status;
    throw err;
  }
  return j;
}

const pct = (x) => (100 * x).toFixed(x >= 0.995 || x < 0.001 ? 0 : 1) + '%';
const fmt = (x, d) =>
  (x === null || x === undefined || !isFinite(x)) ? '–' : Number(x).toFixed(d);
const hhmmss = (d) => d.toTimeString().slice(0, 8);

/* Replace node's children, skipping null/undefined (conditional parts). */
function put(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

function showError(id, e) { $(id).textContent = e ? String(e.message || e) : ''; }

/* ==== tabs ================================================================================== */

function showPage(name) {
  for (const b of $$('#tabs button')) b.classList.toggle('active', b.dataset.page === name);
  for (const p of $$('section.page')) p.classList.toggle('active', p.id === 'page-' + name);
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  if (name === 'recommend' && !rc.loaded) rcLoad();
  if (name === 'fraud' && !fr.rulesLoaded) frRulesLoad();
  if (name === 'fraud') frFeedLoad();
  if (name === 'monitoring') monRender();
}

/* ==== customer service ====================================================================== */

const cs = { session: null };

function csNewSession() {
  cs.session = 'web-' + Math.random().toString(36).slice(2, 10);
  localStorage.setItem('lepton.cs.session', cs.session);
  localStorage.removeItem('lepton.cs.started'); /* the service knows a session after a turn */
  $('#cs-session').textContent = cs.session;
  $('#cs-log').replaceChildren(el('div', {class: 'empty',
    text: 'New session. Say hello, ask where your order is, or ask for a human.'}));
  $('#cs-state').replaceChildren(el('div', {class: 'empty', text: 'No turns yet.'}));
}

function csMeta(a) {
  const conf = a.confidence || 0;
  const meta = el('div', {class: 'meta'}, [
    el('div', {}, [el('span', {class: 'k', text: 'intent '}),
      el('span', {class: 'pill' + (a.out_of_scope ? ' grey' : ''), 'data-role': 'intent',
                  text: a.intent}),
      ' ', el('b', {text: pct(conf)})]),
    el('div', {class: 'bar'}, [el('i', {style: 'width:' + (100 * conf).toFixed(1) + '%'})]),
  ]);
  if (a.alternatives && a.alternatives.length > 1)
    meta.appendChild(el('div', {}, [el('span', {class: 'k', text: 'alternatives '}),
      a.alternatives.slice(1).map((x) => x.intent + ' ' + pct(x.confidence)).join(', ')]));
  if (a.out_of_scope) meta.appendChild(el('div', {}, [el('span', {class: 'pill warn',
    text: 'out of scope'})]));
  const ents = a.entities || [];
  meta.appendChild(el('div', {}, [el('span', {class: 'k', text: 'entities '}),
    ...(ents.length ? ents.map((e) => el('span', {class: 'chip', text: e.type + ': ' + e.value}))
                    : [el('span', {class: 'muted', text: 'none'})])]));
  const h = a.handoff || {};
  meta.appendChild(el('div', {}, [el('span', {class: 'k', text: 'hand-off '}),
    h.needed ? el('span', {class: 'pill bad', 'data-role': 'handoff',
                           text: 'to a human' + (h.reason ? ' (' + h.reason + ')' : '')})
             : el('span', {class: 'pill ok', 'data-role': 'handoff', text: 'no'})]));
  if (a.faq && a.faq.confident && a.faq.answer)
    meta.appendChild(el('div', {}, [el('span', {class: 'k', text: 'FAQ '}), 'answered']));
  return meta;
}

async function csSend(text) {
  text = text.trim();
  if (!text) return;
  showError('#cs-error', null);
  const log = $('#cs-log');
  $('.empty', log) && $('.empty', log).remove();
  log.appendChild(el('div', {class: 'turn user'}, [el('div', {class: 'bubble', text})]));
  log.scrollTop = log.scrollHeight;
  $('#cs-send').disabled = true;
  try {
    const a = await api('cs', 'POST', '/v1/chat', {session_id: cs.session, text});
    let reply = a.reply || '';
    if (a.faq && a.faq.confident && a.faq.answer && !reply.includes(a.faq.answer))
      reply += (reply ? '\n\n' : '') + a.faq.answer;
    log.appendChild(el('div', {class: 'turn bot'}, [
      el('div', {class: 'bubble', 'data-role': 'reply', text: reply}), csMeta(a)]));
    log.scrollTop = log.scrollHeight;
    localStorage.setItem('lepton.cs.started', '1');
    csState();
  } catch (e) {
    showError('#cs-error', e);
  } finally {
    $('#cs-send').disabled = false;
  }
}

async function csState() {
  try {
    const s = await api('cs', 'GET', '/v1/sessions/' + encodeURIComponent(cs.session));
    const slots = Object.entries(s.slots || {});
    $('#cs-state').replaceChildren(
      el('div', {}, [el('span', {class: 'muted', text: 'turns '}), String(s.turns),
        '   ', el('span', {class: 'muted', text: 'handed off '}),
        el('span', {class: 'pill ' + (s.handed_off ? 'bad' : 'ok'),
                    text: s.handed_off ? 'yes' : 'no'})]),
      el('div', {style: 'margin-top:6px'}, [el('span', {class: 'muted', text: 'pending intent '}),
        s.pending_intent || '–']),
      el('h3', {text: 'Slots'}),
      slots.length ? el('div', {}, slots.map(([k, v]) => el('span', {class: 'chip',
        text: k + ' = ' + v}))) : el('div', {class: 'muted', text: 'none filled'}),
      el('h3', {text: 'History (stored redacted)'}),
      el('table', {}, [el('tbody', {}, (s.history || []).slice(-8).map((t) => el('tr', {}, [
        el('td', {class: 'mono', text: '#' + t.turn_id}),
        el('td', {text: t.text === null ? '(hashed)' : t.text}),
        el('td', {}, [el('span', {class: 'pill', text: t.intent})])])))]));
  } catch (e) {
    if (e.status !== 404) showError('#cs-error', e);
  }
}

function csInit() {
  cs.session = localStorage.getItem('lepton.cs.session');
  if (!cs.session) csNewSession();
  $('#cs-session').textContent = cs.session;
  $('#cs-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('#cs-input').value;
    $('#cs-input').value = '';
    csSend(t);
  });
  $('#cs-new').addEventListener('click', csNewSession);
  $('#cs-refresh').addEventListener('click', csState);
  for (const t of ['hi there', 'where is my order ORD-48213?', 'change my email to ana@example.com',
                   'I want to return the shoes', 'let me talk to a human'])
    $('#cs-try').appendChild(el('button', {class: 'btn ghost', type: 'button', text: t,
      onclick: () => csSend(t)}));
  if (localStorage.getItem('lepton.cs.started')) csState();
}

/* ==== fraud ================================================================================= */

const fr = { feed: [], rulesLoaded: false };
const EXAMPLE_RULES = [
  {name: 'big_amount', when: 'amount > 220', action: 'review'},
  {name: 'burst', when: 'customer_id:count_1h >= 3 and amount > 2 * customer_id:mean_30d',
   action: 'block'},
];

function frNewId() { $('#fr-id').value = 'tx-' + Date.now().toString(36) + '-' +
                     Math.floor(Math.random() * 1e4); }

function decisionPill(d) {
  return el('span', {class: 'pill ' + (d === 'approve' ? 'ok' : d === 'review' ? 'warn' : 'bad'),
                     text: d});
}

function frResult(tx, r) {
  put($('#fr-result'),
    el('h3', {text: 'Decision'}),
    el('div', {class: 'score'}, [el('b', {text: pct(r.score)}),
      el('span', {class: 'muted', text: 'fraud probability'}), decisionPill(r.decision),
      r.model_decision !== r.decision
        ? el('span', {class: 'muted small', text: '(model said ' + r.model_decision + ')'})
        : null]),
    el('div', {class: 'gauge'}, [el('i', {style: 'left:calc(' + (100 * r.score).toFixed(2) +
                                                 '% - 2px)'})]),
    el('h3', {text: 'Top reasons'}),
    el('ul', {class: 'reasons'}, (r.reasons || []).map((x) => el('li', {}, [x.text + ' ',
      el('span', {class: 'muted small', text: (x.contribution >= 0 ? '+' : '') +
                  fmt(x.contribution, 2) + ' log-odds'})]))),
    (r.rules_hit && r.rules_hit.length)
      ? el('div', {class: 'note', text: 'rules hit: ' + r.rules_hit.join(', ')}) : null,
    el('div', {class: 'note', text: 'model ' + r.model_version + ' · ' + r.latency_us +
                                    ' µs in the service'}));
}

function frFeedRender() {
  const body = $('#fr-feed');
  body.replaceChildren(...fr.feed.slice(0, 100).map((d, i) => el('tr', {
    class: i === 0 ? 'fresh' : ''}, [
    el('td', {class: 'mono nowrap', text: d.at}),
    el('td', {class: 'mono small', text: d.id}),
    el('td', {text: fmt(d.amount, 2)}),
    el('td', {class: 'nowrap', text: pct(d.r.score)}),
    el('td', {}, [decisionPill(d.r.decision)]),
    el('td', {class: 'small', text: [...(d.r.rules_hit || []).map((x) => 'rule ' + x),
      ...(d.r.reasons || []).slice(0, 2).map((x) => x.feature)].join(', ')}),
  ])));
  $('#fr-count').textContent = String(fr.feed.length);
}

/* The feed from the service's decision log (GET /v1/decisions): every client's decisions,
 * newest first; polled while the fraud page is shown. */
async function frFeedLoad() {
  try {
    const j = await api('fraud', 'GET', '/v1/decisions', undefined, 'limit=50');
    fr.feed = (j.decisions || []).map((d) => ({
      at: hhmmss(new Date(1000 * d.logged_at)), id: d.transaction_id,
      amount: d.transaction ? d.transaction.amount : null, r: d}));
    frFeedRender();
  } catch (e) {
    /* an older fraud service without the endpoint: keep the browser's own feed */
  }
}

async function frScore(amountOverride) {
  showError('#fr-error', null);
  if (!$('#fr-id').value) frNewId();
  const tx = {
    transaction_id: $('#fr-id').value.trim(),
    amount: amountOverride !== undefined ? amountOverride : Number($('#fr-amount').value),
    customer_id: $('#fr-customer').value.trim(),
    terminal_id: $('#fr-terminal').value.trim(),
  };
  if ($('#fr-time').value.trim()) tx.time = $('#fr-time').value.trim();
  try {
    const r = await api('fraud', 'POST', '/v1/score', tx);
    frResult(tx, r);
    fr.feed.unshift({at: hhmmss(new Date()), id: tx.transaction_id, amount: tx.amount, r});
    frFeedRender();
    frFeedLoad();
  } catch (e) {
    showError('#fr-error', e);
  }
  frNewId();
}

function frRulesTable(rules) {
  $('#fr-rules-table').replaceChildren(rules.length
    ? el('table', {}, [el('thead', {}, [el('tr', {}, [el('th', {text: 'rule'}),
        el('th', {text: 'when'}), el('th', {text: 'action'})])]),
      el('tbody', {}, rules.map((r) => el('tr', {}, [el('td', {class: 'mono', text: r.name}),
        el('td', {class: 'mono', text: r.when}), el('td', {}, [el('span', {
          class: 'pill ' + (r.action === 'block' ? 'bad' : r.action === 'allow' ? 'ok' : 'warn'),
          text: r.action})])])))])
    : el('div', {class: 'empty', text: 'No rules: the model decides alone.'}));
}

async function frRulesLoad() {
  showError('#fr-rules-error', null);
  try {
    const j = await api('fraud', 'GET', '/v1/rules');
    const rules = j.rules || [];
    $('#fr-rules').value = JSON.stringify(rules, null, 2);
    frRulesTable(rules);
    fr.rulesLoaded = true;
  } catch (e) {
    showError('#fr-rules-error', e);
  }
}

function frRulesParse() {
  try {
    const v = JSON.parse($('#fr-rules').value || '[]');
    if (!Array.isArray(v)) throw new Error('expected a JSON array of rules');
    return v;
  } catch (e) {
    showError('#fr-rules-error', 'rules: ' + e.message);
    return null;
  }
}

async function frRulesSave() {
  showError('#fr-rules-error', null);
  const rules = frRulesParse();
  if (!rules) return;
  try {
    await api('fraud', 'PUT', '/v1/rules', rules);
    await frRulesLoad();
  } catch (e) {
    showError('#fr-rules-error', e);
  }
}

async function frBacktest() {
  showError('#fr-rules-error', null);
  const rules = frRulesParse();
  if (!rules) return;
  const out = $('#fr-backtest-out');
  out.replaceChildren(el('div', {class: 'muted', text: 'Backtesting…'}));
  try {
    const b = await api('fraud', 'POST', '/v1/rules/backtest', {rules});
    put(out, el('h3', {text: 'Backtest on ' + b.n + ' labelled transactions (' +
                                        b.n_fraud + ' frauds)'}),
      el('table', {}, [el('thead', {}, [el('tr', {}, ['rule', 'hits', 'precision', 'recall',
        'changes'].map((t) => el('th', {text: t})))]),
      el('tbody', {}, (b.rules || []).map((r) => el('tr', {}, [
        el('td', {class: 'mono', text: r.name}), el('td', {text: String(r.hits)}),
        el('td', {text: r.precision === null ? '–' : pct(r.precision)}),
        el('td', {text: r.recall === null || r.recall === undefined ? '–' : pct(r.recall)}),
        el('td', {text: String(r.decisions_changed)})])))]),
      b.with_all_rules ? el('div', {class: 'note', text: 'frauds stopped: model alone ' +
        b.with_all_rules.frauds_stopped_model_only + ', with these rules ' +
        b.with_all_rules.frauds_stopped_with_rules}) : null);
  } catch (e) {
    out.replaceChildren(el('div', {class: 'note', text: e.status === 404 || e.status === 405
      ? 'This fraud service has no backtest endpoint; run `lepton-fraud backtest --model M.lpm ' +
        '--rules rules.json --data history.csv`.'
      : 'Backtest failed: ' + e.message}));
  }
}

function frInit() {
  frNewId();
  $('#fr-form').addEventListener('submit', (ev) => { ev.preventDefault(); frScore(); });
  $('#fr-burst').addEventListener('click', async () => {
    /* five quick transactions of one customer: the velocity features (count_1h, sum_1h) rise */
    for (let i = 0; i < 5; i++) {
      frNewId();
      await frScore(Math.round((40 + 90 * i + Math.random() * 20) * 100) / 100);
    }
  });
  $('#fr-rules-load').addEventListener('click', frRulesLoad);
  $('#fr-rules-save').addEventListener('click', frRulesSave);
  $('#fr-backtest').addEventListener('click', frBacktest);
  $('#fr-rules-example').addEventListener('click', () => {
    const cur = frRulesParse() || [];
    const have = new Set(cur.map((r) => r.name));
    $('#fr-rules').value = JSON.stringify(cur.concat(EXAMPLE_RULES.filter((r) =>
      !have.has(r.name))), null, 2);
  });
  $('#fr-rules').addEventListener('input', () => {
    const v = frRulesParse();
    if (v) { showError('#fr-rules-error', null); frRulesTable(v); }
  });
}

/* ==== recommend ============================================================================= */

const rc = { loaded: false, history: [] };
const CAT_COLORS = ['#4263eb', '#0ca678', '#f08c00', '#ae3ec9', '#e8590c', '#1098ad', '#c2255c',
                    '#5c940d'];

function itemColor(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return CAT_COLORS[h % CAT_COLORS.length];
}

async function rcLoad() {
  const user = $('#rc-user').value.trim();
  if (!user) return;
  showError('#rc-error', null);
  $('#rc-who').textContent = user;
  try {
    const j = await api('recommend', 'GET', '/v1/recommend', undefined,
                        'user=' + encodeURIComponent(user) + '&k=' +
                        encodeURIComponent($('#rc-k').value || '8'));
    rc.loaded = true;
    $('#rc-strategy').textContent = j.strategy === 'popularity' || j.strategy === 'popular'
      ? 'Strategy: ' + j.strategy + ' (no history for this user yet: click an item).'
      : 'Strategy: ' + j.strategy + ' (personalised from the user\'s history).';
    const items = j.items || [];
    const box = $('#rc-items');
    box.dataset.list = items.map((x) => x.item).join(',');
    box.replaceChildren(...(items.length ? items.map((x, i) => el('div', {
      class: 'item', 'data-item': x.item, title: 'click to send a "' + $('#rc-type').value +
                                                 '" event', onclick: () => rcClick(x.item)}, [
      el('div', {class: 'thumb', style: 'background:' + itemColor(x.item), text: x.item}),
      el('span', {class: 'rank', text: '#' + (i + 1)}),
      el('b', {text: x.item}),
      el('div', {class: 'bar'}, [el('i', {style: 'width:' +
        Math.max(3, Math.min(100, 100 * x.score / (items[0].score || 1))).toFixed(0) + '%'})]),
      el('div', {class: 'because', text: x.because && x.because.length
        ? 'because you liked ' + x.because.join(', ') : 'popular with shoppers'}),
    ])) : [el('div', {class: 'empty', text: 'No items to recommend.'})]));
    $('#rc-updated').textContent = 'updated ' + hhmmss(new Date());
  } catch (e) {
    showError('#rc-error', e);
  }
}

async function rcClick(item) {
  const user = $('#rc-user').value.trim();
  const type = $('#rc-type').value;
  showError('#rc-error', null);
  try {
    await api('recommend', 'POST', '/v1/events', {user, item, type});
    rc.history.unshift(type + ' ' + item);
    $('#rc-history').replaceChildren(...rc.history.slice(0, 20).map((h) =>
      el('span', {class: 'chip', text: user + ': ' + h})));
    await rcLoad();
  } catch (e) {
    showError('#rc-error', e);
  }
}

function rcInit() {
  const dl = $('#rc-users');
  for (let i = 0; i < 12; i++)
    dl.appendChild(el('option', {value: 'u' + String(i).padStart(4, '0')}));
  $('#rc-load').addEventListener('click', rcLoad);
  $('#rc-user').addEventListener('change', rcLoad);
  $('#rc-new').addEventListener('click', () => {
    $('#rc-user').value = 'visitor-' + Math.random().toString(36).slice(2, 7);
    rc.history = [];
    $('#rc-history').replaceChildren(el('span', {class: 'muted small', text: 'none yet'}));
    rcLoad();
  });
}

/* ==== diagnosis ============================================================================= */

const dx = { image: null }; /* base64 PNG/JPEG without the data: prefix */

function dxSetImage(dataUrl) {
  dx.image = dataUrl.slice(dataUrl.indexOf(',') + 1);
  $('#dx-img').src = dataUrl;
  $('#dx-heat').removeAttribute('src');
  $('#dx-viewer').style.display = '';
}

/* A synthetic 28 x 28 grey image like the demo data (data/diagnosis): a ring, a blob or a bar
 * on speckle noise. Seeded by Math.random: a new case each click. */
function dxSample(kind) {
  const n = 28, c = document.createElement('canvas');
  c.width = n;
  c.height = n;
  const g = c.getContext('2d'), img = g.createImageData(n, n);
  const cx = 10 + Math.random() * 8, cy = 10 + Math.random() * 8, r = 5 + Math.random() * 3;
  const ang = Math.random() * Math.PI;
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    const dx0 = x - cx, dy0 = y - cy, d = Math.hypot(dx0, dy0);
    let v;
    if (kind === 'ring') v = Math.abs(d - r) < 1.4 ? 1 : 0;
    else if (kind === 'blob') v = d < r ? 1 : 0;
    else {
      const along = dx0 * Math.cos(ang) + dy0 * Math.sin(ang);
      const across = -dx0 * Math.sin(ang) + dy0 * Math.cos(ang);
      v = Math.abs(across) < 1.5 && Math.abs(along) < 9 ? 1 : 0;
    }
    const noise = Math.random() < 0.35 ? Math.random() : 0;
    const p = Math.max(0, Math.min(255, Math.round(255 * Math.max(v * 0.9, noise))));
    const o = 4 * (y * n + x);
    img.data[o] = img.data[o + 1] = img.data[o + 2] = p;
    img.data[o + 3] = 255;
  }
  g.putImageData(img, 0, 0);
  dxSetImage(c.toDataURL('image/png'));
}

function dxRender(r) {
  const diff = r.differential || [];
  $('#dx-diff').replaceChildren(el('h3', {text: 'Differential'}), ...diff.map((d, i) =>
    el('div', {class: 'line' + (i === 0 ? ' top' : ''), 'data-label': d.label}, [
      el('b', {text: d.label}),
      el('div', {class: 'bar'}, [el('i', {style: 'width:' +
        (100 * d.probability).toFixed(1) + '%'})]),
      el('span', {text: pct(d.probability)})])));
  const ab = r.abstain || {};
  const ood = ab.ood_score !== undefined ? ab.ood_score : ab.ood_distance;
  $('#dx-abstain').replaceChildren(ab.value
    ? el('div', {class: 'abstain'}, [el('b', {text: 'Abstained: '}),
        ab.reason || 'the case is unlike the training data',
        ood !== undefined ? el('div', {class: 'small muted',
          text: 'out-of-distribution score ' + fmt(ood, 2)}) : null])
    : el('div', {class: 'note', text: 'No abstention' + (ood !== undefined
        ? ' (out-of-distribution score ' + fmt(ood, 2) + ')' : '') + '.'}));
  const ex = r.explanation || {};
  const hm = ex.summary && (ex.summary.image || ex.summary);
  $('#dx-viewer').style.display = dx.image ? '' : 'none';
  if (ex.heatmap_png) $('#dx-heat').src = 'data:image/png;base64,' + ex.heatmap_png;
  else $('#dx-heat').removeAttribute('src');
  if (ex.tokens && ex.tokens.length)
    $('#dx-abstain').appendChild(el('div', {class: 'note'}, ['words that mattered: ',
      ...ex.tokens.slice().sort((a, b) => Math.abs(b.contribution || 0) -
        Math.abs(a.contribution || 0)).slice(0, 8).map((t) => el('span', {class: 'chip',
        text: (t.token || t.text || t[0]) + (typeof t.contribution === 'number'
          ? ' ' + (t.contribution >= 0 ? '+' : '') + fmt(t.contribution, 2) : '')}))]));
  $('#dx-audit').textContent = 'audit id ' + r.audit_id + ' · model ' + r.model_version;
  $('#dx-audit').dataset.audit = r.audit_id;
  put($('#dx-statement'),el('div', {class: 'statement', text: r.statement ||
    'Decision support only.'}), hm && hm.method ? el('div', {class: 'note', text: 'heat map: ' +
    hm.method + ' for class ' + hm.class}) : null);
}

async function dxGo() {
  showError('#dx-error', null);
  const body = {};
  if (dx.image) body.image = dx.image;
  const t = $('#dx-text').value.trim();
  if (t) body.text = t;
  if (!body.image && !body.text) {
    showError('#dx-error', 'Add an image or some symptoms first.');
    return;
  }
  $('#dx-go').disabled = true;
  try {
    dxRender(await api('diagnosis', 'POST', '/v1/diagnose', body));
  } catch (e) {
    showError('#dx-error', e);
  } finally {
    $('#dx-go').disabled = false;
  }
}

function dxInit() {
  $('#dx-file').addEventListener('change', () => {
    const f = $('#dx-file').files[0];
    if (!f) return;
    const rd = new FileReader();
    rd.onload = () => dxSetImage(rd.result);
    rd.readAsDataURL(f);
  });
  for (const b of $$('[data-sample]'))
    b.addEventListener('click', () => dxSample(b.dataset.sample));
  $('#dx-go').addEventListener('click', dxGo);
  $('#dx-clear').addEventListener('click', () => {
    dx.image = null;
    $('#dx-file').value = '';
    $('#dx-img').removeAttribute('src');
    $('#dx-heat').removeAttribute('src');
  });
  $('#dx-opacity').addEventListener('input', () => {
    $('#dx-heat').style.opacity = $('#dx-opacity').value / 100;
  });
  $('#dx-heat').style.opacity = $('#dx-opacity').value / 100;
}

/* ==== monitoring ============================================================================ */

const mon = { history: [], last: null };
const SERIES_COLORS = {p50: '#4263eb', p95: '#f08c00', p99: '#e03131', rps: '#0ca678'};

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children || []) e.appendChild(c);
  return e;
}

/* A line chart of several series over the same x (seconds ago). series: [{name, color,
 * points: [[t, y|null], ...]}]. Gaps (null) break the line. */
function lineChart(series, unit) {
  const W = 300, H = 130, L = 46, R = 6, T = 8, B = 18;
  const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  const s = svg('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`,
                        'data-points': String(all.length)});
  const tmax = Math.max(...series.flatMap((x) => x.points.map((p) => p[0])), 1);
  const tmin = Math.min(...series.flatMap((x) => x.points.map((p) => p[0])), tmax - 1);
  let ymax = Math.max(...all.map((p) => p[1]), 0);
  ymax = ymax > 0 ? ymax * 1.15 : 1;
  const X = (t) => L + (W - L - R) * (t - tmin) / Math.max(1e-9, tmax - tmin);
  const Y = (y) => T + (H - T - B) * (1 - y / ymax);
  for (let k = 0; k <= 2; k++) {
    const y = ymax * k / 2;
    s.appendChild(svg('line', {class: 'axis', x1: L, x2: W - R, y1: Y(y), y2: Y(y)}));
    const lab = svg('text', {x: L - 4, y: Y(y) + 3, 'text-anchor': 'end'});
    lab.textContent = (y >= 100 ? y.toFixed(0) : y >= 10 ? y.toFixed(1) : y.toFixed(2)) +
                      (k === 2 ? unit : '');
    s.appendChild(lab);
  }
  const lab = svg('text', {x: W - R, y: H - 4, 'text-anchor': 'end'});
  lab.textContent = 'last ' + Math.round(tmax - tmin) + ' s';
  s.appendChild(lab);
  for (const ser of series) {
    let d = '', pen = false;
    for (const [t, y] of ser.points) {
      if (y === null) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + X(t).toFixed(1) + ' ' + Y(y).toFixed(1) + ' ';
      pen = true;
    }
    if (!d) continue;
    s.appendChild(svg('path', {class: 'series', d, stroke: ser.color,
                               'data-series': ser.name}));
    const pts = ser.points.filter((p) => p[1] !== null);
    if (pts.length === 1)
      s.appendChild(svg('circle', {cx: X(pts[0][0]), cy: Y(pts[0][1]), r: 2.5,
                                   fill: ser.color}));
  }
  return s;
}

/* Horizontal bars: [{label, value}] with a threshold line (e.g. PSI 0.2). */
function barChart(rows, threshold) {
  const W = 300, rowH = 16, L = 110, H = rowH * rows.length + 6;
  const vmax = Math.max(threshold || 0, ...rows.map((r) => r.value), 1e-9) * 1.1;
  const s = svg('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`,
                        'data-points': String(rows.length)});
  rows.forEach((r, i) => {
    const y = 3 + i * rowH;
    const t = svg('text', {x: L - 6, y: y + 11, 'text-anchor': 'end'});
    t.textContent = r.label.length > 18 ? r.label.slice(0, 17) + '…' : r.label;
    s.appendChild(t);
    s.appendChild(svg('rect', {x: L, y: y + 2, height: rowH - 5, rx: 2,
      width: Math.max(1, (W - L - 30) * r.value / vmax),
      fill: r.few ? '#adb5bd' : threshold && r.value > threshold ? '#e03131' : '#4263eb'}));
    const v = svg('text', {x: L + 4 + (W - L - 30) * r.value / vmax, y: y + 11});
    v.textContent = Number.isInteger(r.value) ? String(r.value) : fmt(r.value, 3);
    s.appendChild(v);
  });
  if (threshold) {
    const x = L + (W - L - 30) * threshold / vmax;
    s.appendChild(svg('line', {x1: x, x2: x, y1: 0, y2: H, stroke: '#868e96',
                               'stroke-dasharray': '3 3'}));
  }
  return s;
}

/* Drift rows from a /v1/monitor answer of any service that has one (lepton serve's shape:
 * drift.features[] with name and psi; live metrics as a flat object). */
function monitorParts(m) {
  const out = [];
  const feats = (m.drift && (m.drift.features || m.drift)) || m.features || [];
  const rows = (Array.isArray(feats) ? feats : Object.entries(feats).map(([k, v]) =>
    Object.assign({name: k}, typeof v === 'object' ? v : {psi: v})))
    .filter((f) => f && typeof f.psi === 'number')
    .map((f) => ({label: f.name || f.feature || '?', value: f.psi,
                  /* PSI above the threshold on too few rows: not flagged by the service */
                  few: f.drifted === false && f.psi > (m.psi_threshold || 0.2)}))
    .sort((a, b) => b.value - a.value).slice(0, 10);
  if (rows.length) {
    out.push(el('h3', {text: 'Drift per feature (PSI)'}));
    out.push(barChart(rows, m.psi_threshold || 0.2));
    if (rows.some((r) => r.few))
      out.push(el('div', {class: 'small muted', text: 'grey: above the threshold but on too ' +
        'few rows to flag yet'}));
  }
  const live = m.live || m.metrics;
  if (live && typeof live === 'object') {
    const kv = Object.entries(live).filter(([, v]) => typeof v === 'number');
    if (kv.length) {
      out.push(el('h3', {text: 'Live metrics from labels'}));
      out.push(el('div', {}, kv.map(([k, v]) => el('span', {class: 'chip',
        text: k + ' ' + fmt(v, 3)}))));
    }
  }
  return out;
}

function monRender() {
  const cards = $('#mon-cards');
  const last = mon.last;
  if (!last) {
    cards.replaceChildren(el('div', {class: 'empty', text: 'Waiting for the first overview…'}));
    return;
  }
  const t0 = last.time;
  cards.replaceChildren(...last.services.map((svcNow) => {
    const hist = mon.history.map((o) => [o.time - t0,
      o.services.find((x) => x.name === svcNow.name) || {}]);
    const lat = (k) => hist.map(([t, x]) => [t, x.latency_ms ? x.latency_ms[k] : null]);
    const head = el('div', {class: 'head'}, [
      el('i', {class: 'dot ' + (svcNow.up ? (svcNow.ready ? 'up' : 'starting') : 'down')}),
      el('h2', {text: svcNow.title}),
      el('span', {class: 'muted small mono', text: ':' + svcNow.port})]);
    if (!svcNow.up)
      return el('div', {class: 'card', 'data-svc': svcNow.name}, [head,
        el('div', {class: 'error', text: 'down: ' + (svcNow.error || 'no answer')})]);
    const l = svcNow.latency_ms || svcNow.latency_ms_all;
    const parts = [head,
      el('div', {class: 'kpis'}, [
        el('div', {class: 'kpi'}, [el('b', {text: fmt(svcNow.rps, 2)}),
          el('span', {text: 'req/s'})]),
        el('div', {class: 'kpi'}, [el('b', {text: pct(svcNow.error_rate || 0)}),
          el('span', {text: 'errors'})]),
        el('div', {class: 'kpi'}, [el('b', {text: String(svcNow.requests)}),
          el('span', {text: 'requests'})])]),
      el('h3', {text: 'Latency' + (svcNow.latency_ms ? '' : ' (since start)')}),
      el('div', {class: 'small', 'data-role': 'latency'}, ['p50 ' + fmt(l && l.p50, 2) +
        ' ms · p95 ' + fmt(l && l.p95, 2) + ' ms · p99 ' + fmt(l && l.p99, 2) + ' ms']),
      lineChart(['p50', 'p95', 'p99'].map((k) => ({name: k, color: SERIES_COLORS[k],
                                                   points: lat(k)})), ' ms'),
      el('div', {class: 'legend'}, ['p50', 'p95', 'p99'].map((k) => el('span', {}, [
        el('i', {style: 'background:' + SERIES_COLORS[k]}), k]))),
      el('h3', {text: 'Requests per second'}),
      lineChart([{name: 'rps', color: SERIES_COLORS.rps,
                  points: hist.map(([t, x]) => [t, x.rps === undefined ? null : x.rps])}],
                ' /s'),
    ];
    const routes = Object.entries(svcNow.routes || {}).filter(([, n]) => n > 0);
    if (routes.length)
      parts.push(el('h3', {text: 'Requests by route'}),
                 barChart(routes.map(([k, v]) => ({label: k, value: v}))));
    const own = Object.entries(svcNow.metrics || {});
    if (own.length)
      parts.push(el('h3', {text: 'Service counters'}), el('div', {}, own.map(([k, v]) =>
        el('span', {class: 'chip', text: k + ' ' + fmt(v, Number.isInteger(v) ? 0 : 3)}))));
    if (svcNow.monitor) parts.push(...monitorParts(svcNow.monitor));
    else parts.push(el('div', {class: 'note', text: 'No drift report: this service has no ' +
                                                    '/v1/monitor endpoint.'}));
    return el('div', {class: 'card', 'data-svc': svcNow.name}, parts);
  }));
  $('#mon-note').textContent = 'Updated ' + hhmmss(new Date(last.time * 1000)) +
    (last.state ? ' · state folder ' + last.state : '') +
    '. Rates and windowed percentiles compare successive scrapes; percentiles are estimated ' +
    'from histogram buckets.';
}

async function poll() {
  if ($('#page-fraud').classList.contains('active')) frFeedLoad();
  try {
    const r = await fetch('/api/overview', {cache: 'no-store'});
    const o = await r.json();
    mon.last = o;
    mon.history.push(o);
    if (mon.history.length > MON_KEEP) mon.history.shift();
    for (const s of o.services) {
      const d = $(`.dot[data-svc="${s.name}"]`);
      if (d) {
        d.className = 'dot ' + (s.up ? (s.ready ? 'up' : 'starting') : 'down');
        d.title = s.title + ' on port ' + s.port + ': ' + (s.up ? 'up' : 'down');
      }
    }
    if ($('#page-monitoring').classList.contains('active')) monRender();
  } catch (e) {
    for (const d of $$('.dot[data-svc]')) d.className = 'dot down';
  }
  $('#clock').textContent = hhmmss(new Date());
}

/* ==== start ================================================================================= */

function init() {
  for (const b of $$('#tabs button')) b.addEventListener('click', () => showPage(b.dataset.page));
  csInit();
  frInit();
  rcInit();
  dxInit();
  const start = (location.hash || '#cs').slice(1);
  showPage($('#page-' + start) ? start : 'cs');
  poll();
  setInterval(poll, POLL_MS);
}

init();

// Points Alliance block explorer. Vanilla JS, no build step. Talks only to
// this node's JSON API. Every value from the API reaches the DOM through
// textContent / attributes (see h()), never as HTML.
'use strict';
(() => {
  const main = document.getElementById('main');
  const DAY_MS = 86400000;
  let cleanups = []; // stop timers / streams of the current page
  let token = 0; // render generation: late answers of an old page are dropped
  let lastSearch = null; // the route a search landed on (its query stays in the box there)
  // `?live=0`: a still page, no event stream or polling (screenshots, and
  // headless browsers, which wait for every open request to end).
  const LIVE = !/[?&]live=0(&|$)/.test(location.search);

  // ---- DOM helpers ---------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v);
    }
    append(el, kids);
    return el;
  }
  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const link = (href, text, cls) => h('a', { href, class: cls }, text);
  const short = (s) => (s && s.length > 18 ? s.slice(0, 10) + '…' + s.slice(-6) : s);
  const mono = (text) => h('span', { class: 'mono', title: text }, text);
  const names = {}; // merchant address → id, to label known keys
  const addr = (a) => (a ? h('span', { class: 'addr' }, names[a] ? h('span', { class: 'who' }, names[a]) : null,
    link('#/account/' + encodeURIComponent(a), short(a), 'mono')) : '—');
  const txLink = (x, full) => link('#/tx/' + x, full ? x : short(x), 'mono');
  const blockLink = (n) => link('#/block/' + n, '#' + n);
  const merchant = (id) => link('#/merchants', id);
  const num = (n) => (n == null ? '—' : Number(n).toLocaleString('en-US'));
  const badge = (text, kind) => h('span', { class: 'badge ' + (kind || '') }, text);

  function utc(ms) {
    return ms == null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  }
  const utcDate = (ms) => (ms == null ? 'never' : new Date(ms).toISOString().slice(0, 10));
  function ago(ms) {
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 0) return 'in ' + -s + ' s';
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }
  // Hundredths of a minor unit → currency, 2 decimals (more when needed).
  function money(c) {
    const neg = c < 0;
    const a = Math.abs(Math.trunc(c));
    let frac = String(a % 10000).padStart(4, '0').replace(/0{1,2}$/, '');
    if (frac.length < 2) frac = frac.padEnd(2, '0');
    const whole = Math.floor(a / 10000).toLocaleString('en-US');
    return (neg ? '-' : '') + whole + '.' + frac;
  }

  function table(headers, rows, empty) {
    if (!rows.length) return h('p', { class: 'muted' }, empty || 'Nothing yet.');
    return h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
      h('tbody', {}, rows.map((r) => (r instanceof Node ? r : h('tr', {}, r.map((c) => h('td', {}, c))))))));
  }
  function fields(pairs) {
    return h('dl', { class: 'fields' },
      pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }
  const section = (title, ...kids) => h('section', { class: 'card' }, h('h2', {}, title), kids);

  function show(...kids) {
    main.textContent = '';
    append(main, kids);
  }
  function errorBox(msg, hint) {
    return h('div', { class: 'error', role: 'alert' }, h('strong', {}, msg), hint ? h('p', {}, hint) : null);
  }

  // ---- charts (inline SVG, no library) ------------------------------------
  // Bars of one or more series over shared categories; colours and text
  // come from the page's CSS (classes chart-s0, chart-s1, ...), so light
  // and dark themes apply. Values reach the DOM as attributes and text only.
  const SVG = 'http://www.w3.org/2000/svg';
  function svgEl(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
    for (const k of kids.flat(Infinity)) {
      if (k == null) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const compact = (n) => (n >= 1e6 ? (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M' : n >= 1e3 ? (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + 'k' : String(Math.round(n * 10) / 10));
  // A nice axis maximum: 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
  }
  // opts: {label, categories: [text], series: [{name, values: [number|null]}], tickEvery, unit}
  function barChart(opts) {
    const W = 640, H = 200, L = 46, R = 8, T = 10, B = 28;
    const n = opts.categories.length, k = opts.series.length;
    const max = niceMax(Math.max(0, ...opts.series.flatMap((x) => x.values.filter((v) => v != null))));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const slot = (W - L - R) / Math.max(1, n);
    const bw = Math.max(1, (slot * 0.8) / k);
    const grid = [0, 0.5, 1].map((f) => [svgEl('line', { class: 'chart-grid', x1: L, x2: W - R, y1: y(max * f), y2: y(max * f) }),
      svgEl('text', { class: 'chart-axis', x: L - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, compact(max * f))]);
    const bars = opts.series.map((ser, j) => ser.values.map((v, i) => (v == null || v === 0 ? null
      : svgEl('rect', { class: 'chart-s' + j, x: L + i * slot + slot * 0.1 + j * bw, y: y(v), width: bw, height: Math.max(0.5, y(0) - y(v)) },
        svgEl('title', {}, opts.categories[i] + ' · ' + ser.name + ': ' + compact(v) + (opts.unit || ''))))));
    const every = opts.tickEvery || 1;
    const ticks = opts.categories.map((c, i) => (i % every ? null
      : svgEl('text', { class: 'chart-axis', x: L + i * slot + slot / 2, y: H - 8, 'text-anchor': 'middle' }, c)));
    const legend = k > 1 ? h('p', { class: 'legend' }, opts.series.map((ser, j) => h('span', {}, h('i', { class: 'key chart-s' + j }), ser.name))) : null;
    return h('figure', { class: 'chart', 'data-chart': opts.id },
      svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': opts.label },
        svgEl('title', {}, opts.label), grid, bars, ticks,
        svgEl('line', { class: 'chart-baseline', x1: L, x2: W - R, y1: y(0), y2: y(0) })),
      h('figcaption', {}, opts.label), legend);
  }

  // ---- API -----------------------------------------------------------------
  async function api(path) {
    const r = await fetch(path, { headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = new Error((body && body.error && body.error.message) || 'HTTP ' + r.status);
      e.status = r.status;
      throw e;
    }
    return body;
  }

  // ---- transactions ----------------------------------------------------------
  const kindOf = (body) => Object.keys(body || {})[0] || '?';
  const snake = (k) => k.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
  function summary(body) {
    const k = kindOf(body);
    const b = (body || {})[k] || {};
    switch (k) {
      case 'Issue': return [num(b.amount), ' pts to ', addr(b.to), b.reason ? ' · ' + b.reason : '', ' · receipt ', b.receipt_ref, ' of ', utcDate(b.receipt_time_ms)];
      case 'Transfer': return [num(b.amount), ' pts to ', addr(b.to), b.memo ? ' · ' + b.memo : ''];
      case 'Redeem': return [num(b.amount), ' pts at ', merchant(b.merchant)];
      case 'SettlementConfirm': return [num(b.amount), ' pts paid by ', merchant(b.debtor)];
      case 'Propose': return [actionText(b.action), ' (until #', b.deadline_height, ')'];
      case 'Vote': return [b.approve ? 'yes' : 'no', ' on ', link('#/governance', 'proposal ' + b.proposal)];
      case 'SetAcceptance': {
        const t = b.terms || {};
        const list = (rates) => rates.map((r) => r.issuer + ' ' + (r.bps / 100) + ' %').join(', ');
        return ['accepts ', (t.rates || []).length ? list(t.rates) : 'every issuer at 100 %', '; converts ', (t.conversions || []).length ? list(t.conversions) : 'none', ' from #', b.effective_height];
      }
      case 'Convert': return [merchant(b.from), ' points into ', num(b.points), ' pts of ', merchant(b.to)];
      case 'RedeemOrder': return [money((b.order || {}).value_minor * 100), ' paid at ', merchant((b.order || {}).merchant), ' · order ', (b.order || {}).order_ref];
      default: return JSON.stringify(b);
    }
  }
  function actionText(action) {
    const k = kindOf(action);
    const a = (action || {})[k] || {};
    switch (k) {
      case 'AddMerchant': return 'add merchant ' + a.id + ' (' + a.name + ')';
      case 'SuspendMerchant': return 'suspend merchant ' + a.id;
      case 'UpdatePolicy': return 'update policy of ' + a.id;
      case 'UpdateParams': return 'update alliance parameters ' + JSON.stringify(a.params);
      default: return k + ' ' + JSON.stringify(a);
    }
  }
  function txRows(txs) {
    return txs.map((t) => [txLink(t.hash), badge(snake(kindOf(t.body))), addr(t.signer), h('span', {}, summary(t.body))]);
  }

  // ---- search ----------------------------------------------------------------
  // The search box and the #/search/QUERY route both land here.
  async function search(raw, fromRoute) {
    const q = (raw || '').trim();
    document.getElementById('q').value = q;
    const my = ++token;
    const go = (to) => {
      if (my !== token) return;
      lastSearch = '#/' + to;
      if (location.hash === '#/' + to) route();
      else if (fromRoute) location.replace('#/' + to);
      else location.hash = '#/' + to;
    };
    if (/^pa1[0-9a-z]{20,}$/i.test(q)) return go('account/' + q.toLowerCase());
    if (/^\d{1,16}$/.test(q)) return go('block/' + Number(q));
    if (/^[0-9a-f]{64}$/i.test(q)) {
      const hash = q.toLowerCase();
      show(h('p', { class: 'muted' }, 'Looking up ', mono(hash), '…'));
      for (const [path, route] of [['/v1/transactions/', 'tx/'], ['/v1/blocks/hash/', 'block/']]) {
        try { await api(path + hash); return go(route + hash); } catch (e) { if (e.status !== 404) { if (my === token) show(errorBox(e.message)); return; } }
      }
      if (my === token) show(errorBox('No transaction or block has the hash ' + hash + '.', 'It may not be finalized yet, or it belongs to another chain.'));
      return;
    }
    show(errorBox(q ? 'Nothing matches “' + q + '”.' : 'Type something to search for.',
      'Search by account address (pa1…), a 64-character transaction or block hash, or a block height.'));
  }

  // ---- pages -----------------------------------------------------------------
  const pages = {};

  pages.home = async (my) => {
    const tipEl = h('span', { class: 'big' }, '…');
    const lagEl = h('span', { class: 'big' }, '…');
    const liveEl = badge('connecting', 'warn');
    const certEl = h('span', { class: 'mid' }, '…');
    const LIST = 10;
    const blocksBody = h('tbody');
    const txsBody = h('tbody');
    const txNote = h('p', { class: 'muted' }, 'Loading the latest transactions…');
    const chartsEl = h('div', { class: 'charts' }, h('p', { class: 'muted' }, 'Loading the last hour…'));
    let head = null;
    let seen = new Set();
    show(
      h('div', { class: 'stats' },
        h('div', { class: 'stat' }, h('label', {}, 'Finalized height'), tipEl),
        h('div', { class: 'stat' }, h('label', {}, 'Head block age'), lagEl),
        h('div', { class: 'stat' }, h('label', {}, 'Head certificate'), certEl),
        h('div', { class: 'stat' }, h('label', {}, 'Updates'), liveEl)),
      section('Last hour', chartsEl),
      section('Latest blocks', h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Height', 'Hash', 'Time (UTC)', 'Txs'].map((x) => h('th', {}, x)))), blocksBody))),
      section('Latest transactions', txNote, h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Tx', 'Kind', 'Signer', 'Summary', 'Block'].map((x) => h('th', {}, x)))), txsBody))));
    const tick = () => { if (head) lagEl.textContent = ago(head.timestamp_ms); };
    const iv = setInterval(tick, 1000);
    cleanups.push(() => clearInterval(iv));

    // Newest first, whatever order blocks arrive in.
    function insertSorted(body, row, height) {
      const after = [...body.children].find((r) => Number(r.dataset.h) < height);
      body.insertBefore(row, after || null);
    }
    function addBlock(b) { // a full block from the API
      if (seen.has(b.height)) return;
      seen.add(b.height);
      const t = b.header.timestamp_ms;
      if (!head || b.height > head.height) {
        head = { height: b.height, timestamp_ms: t };
        tipEl.textContent = num(b.height);
        const c = b.certificate || {};
        certEl.textContent = (c.kind || '?') + ' · ' + (c.votes || []).length + ' signers';
        certEl.title = 'view ' + c.view;
        tick();
      }
      const row = h('tr', { 'data-h': b.height }, h('td', {}, blockLink(b.height)), h('td', {}, link('#/block/' + b.height, short(b.hash), 'mono')),
        h('td', {}, utc(t)), h('td', {}, b.txs.length ? h('strong', {}, b.txs.length) : '0'));
      insertSorted(blocksBody, row, b.height);
      while (blocksBody.children.length > LIST) blocksBody.lastChild.remove();
      if (b.txs.length) addTxs(b);
    }
    const txSeen = new Set();
    function addTx(t, height) {
      if (txSeen.has(t.hash)) return;
      txSeen.add(t.hash);
      insertSorted(txsBody, h('tr', { 'data-h': height }, h('td', {}, txLink(t.hash)), h('td', {}, badge(snake(kindOf(t.body)))),
        h('td', {}, addr(t.signer)), h('td', {}, summary(t.body)), h('td', {}, blockLink(height))), height);
      while (txsBody.children.length > 20) txsBody.lastChild.remove();
      if (txsBody.children.length) txNote.remove();
    }
    function addTxs(block) {
      block.txs.forEach((t) => addTx(t, block.height));
    }
    async function newBlock(height) {
      // Also fills gaps (missed events, blocks finalized while loading).
      for (let n = Math.max(head ? head.height + 1 : height, height - LIST + 1); n <= height; n++) {
        if (seen.has(n)) continue;
        const b = await api('/v1/blocks/' + n);
        if (my === token) addBlock(b);
      }
    }
    async function scan(latest) {
      // The latest blocks, and the latest transactions whatever their age
      // (the node keeps them: an hour of empty blocks does not hide them).
      const tip = latest.height;
      addBlock(latest);
      const hs = [];
      for (let n = tip - 1; n >= Math.max(1, tip - LIST + 1); n--) hs.push(n);
      const [blocks, recent] = await Promise.all([Promise.all(hs.map((n) => api('/v1/blocks/' + n).catch(() => null))),
        api('/v1/transactions/latest?limit=20').catch(() => null)]);
      if (my !== token) return;
      for (const b of blocks.filter(Boolean)) addBlock(b);
      for (const t of (recent ? recent.items : []).reverse()) addTx(t, t.height);
      if (!txsBody.children.length) txNote.textContent = 'No transactions yet.';
    }
    async function charts() {
      const st = await api('/v1/stats/blocks');
      if (my !== token) return;
      const b = st.buckets;
      const minute = (ms) => new Date(ms).toISOString().slice(11, 16);
      chartsEl.textContent = '';
      append(chartsEl, [
        barChart({ id: 'txs-per-block', label: 'Transactions per block (mean per minute, UTC)', categories: b.map((x) => minute(x.start_ms)), tickEvery: 10,
          series: [{ name: 'mean', values: b.map((x) => (x.blocks ? x.txs / x.blocks : null)) }, { name: 'max', values: b.map((x) => (x.blocks ? x.txs_per_block_max : null)) }] }),
        barChart({ id: 'finality', label: 'Finality latency, ms (block time to finalized here; mean and max per minute)', categories: b.map((x) => minute(x.start_ms)), tickEvery: 10, unit: ' ms',
          series: [{ name: 'mean', values: b.map((x) => x.finality_ms_mean) }, { name: 'max', values: b.map((x) => x.finality_ms_max) }] })]);
    }
    charts().catch((e) => { if (my === token) chartsEl.textContent = 'Charts unavailable: ' + e.message; });
    const chartTimer = setInterval(() => charts().catch(() => {}), 10000);
    cleanups.push(() => clearInterval(chartTimer));
    let latest;
    try { latest = await api('/v1/blocks/latest'); } catch (e) { if (e.status !== 404) throw e; }
    if (my !== token) return;
    if (!latest) txNote.textContent = 'No blocks finalized yet.';
    else await scan(latest);
    if (my !== token) return;
    if (!LIVE) { liveEl.textContent = 'still (?live=0)'; liveEl.className = 'badge'; return; }
    // Live: Server-Sent Events, or polling when the stream is unavailable.
    let poll = null;
    const startPolling = () => {
      if (poll || my !== token) return;
      liveEl.textContent = 'polling every 2 s'; liveEl.className = 'badge warn';
      poll = setInterval(async () => {
        try {
          const b = await api('/v1/blocks/latest');
          if (my === token) await newBlock(b.height);
        } catch (_) { liveEl.textContent = 'node unreachable'; liveEl.className = 'badge bad'; }
      }, 2000);
      cleanups.push(() => clearInterval(poll));
    };
    if (!window.EventSource) return startPolling();
    const es = new EventSource('/v1/events');
    cleanups.push(() => es.close());
    es.onopen = () => { liveEl.textContent = 'live'; liveEl.className = 'badge ok'; };
    es.addEventListener('block', (m) => { try { newBlock(JSON.parse(m.data).height).catch(() => {}); } catch (_) { /* skip a bad event */ } });
    es.onerror = () => { es.close(); startPolling(); };
  };

  pages.block = async (my, id) => {
    const b = await api(/^\d+$/.test(id) ? '/v1/blocks/' + id : '/v1/blocks/hash/' + encodeURIComponent(id));
    if (my !== token) return;
    const hd = b.header || {};
    const cert = b.certificate || {};
    const signers = (cert.votes || []).map((v) => v[0]);
    show(
      h('h1', {}, 'Block ', num(b.height)),
      h('p', { class: 'pager' }, b.height > 1 ? link('#/block/' + (b.height - 1), '← previous') : null, ' ', link('#/block/' + (b.height + 1), 'next →')),
      section('Header', fields([
        ['Hash', mono(b.hash)], ['Height', num(b.height)], ['Time', utc(hd.timestamp_ms) + ' (' + ago(hd.timestamp_ms) + ')'],
        ['Proposer', addr(hd.proposer)], ['Previous', b.height > 1 ? link('#/block/' + (b.height - 1), hd.prev_hash, 'mono') : mono(hd.prev_hash)],
        ['Transactions', num(hd.tx_count)], ['Tx root', mono(hd.tx_root)], ['State root', mono(hd.state_root)],
        ['Validator set', mono(hd.validator_set_hash)], ['Chain', hd.chain_id]])),
      section('Certificate', fields([['Kind', badge(cert.kind || '?', 'ok')], ['View', num(cert.view)], ['Signers', String(signers.length)]]),
        h('ul', { class: 'plain' }, signers.map((s) => h('li', {}, addr(s))))),
      section('Transactions', table(['Tx', 'Kind', 'Signer', 'Summary'], txRows(b.txs || []), 'No transactions in this block.')));
  };

  pages.tx = async (my, hash) => {
    const st = await api('/v1/transactions/' + encodeURIComponent(hash));
    if (my !== token) return;
    let tx = null;
    if (st.status === 'committed') {
      const b = await api('/v1/blocks/' + st.height);
      if (my !== token) return;
      tx = (b.txs || [])[st.index] || null;
    } else {
      const iv = setTimeout(() => { if (my === token) route(); }, 2000);
      cleanups.push(() => clearTimeout(iv));
    }
    const r = st.result;
    const result = !r ? badge('pending', 'warn') : r.applied ? badge('applied', 'ok')
      : h('span', {}, badge('rejected: ' + r.code, 'bad'), ' ', r.reason || '');
    const kind = tx ? kindOf(tx.body) : null;
    const inner = tx ? tx.body[kind] || {} : {};
    show(
      h('h1', {}, 'Transaction'),
      section('Status', fields([['Hash', mono(st.hash)], ['Status', badge(st.status, st.status === 'committed' ? 'ok' : 'warn')],
        st.height != null && ['Block', [blockLink(st.height), ' position ', st.index]], ['Result', result]])),
      tx ? section('Body', fields([['Kind', badge(snake(kind))], ['Signer', addr(tx.signer)], ['Nonce', num(tx.nonce)],
        ['Summary', h('span', {}, summary(tx.body))],
        ...Object.entries(inner).map(([k, v]) => [k, /^pa1/.test(v) ? addr(v) : typeof v === 'object' ? h('code', {}, JSON.stringify(v))
          : /_ms$/.test(k) && typeof v === 'number' ? utc(v) + ' (' + v + ')' : String(v)]),
        ['Signature', mono(tx.signature)]]))
        : h('p', { class: 'muted' }, 'Waiting in the mempool; the body is shown once the transaction is in a block (refreshing every 2 s).'));
  };

  pages.account = async (my, address) => {
    const [acct, hist] = await Promise.all([api('/v1/accounts/' + encodeURIComponent(address)),
      api('/v1/accounts/' + encodeURIComponent(address) + '/history?limit=20')]);
    if (my !== token) return;
    const soon = new Set(acct.expiring_soon.map((l) => l.issuer + '|' + l.expiry_ms));
    const soonPts = acct.expiring_soon.reduce((s, l) => s + l.amount, 0);
    const histBody = h('tbody');
    const more = h('button', { type: 'button' }, 'Load more');
    let next = hist.next;
    const addHistory = (items) => histBody.append(...items.map((i) => h('tr', { class: i.applied ? null : 'rejected' },
      h('td', {}, utc(i.timestamp_ms)), h('td', {}, blockLink(i.height)), h('td', {}, badge(i.kind)),
      h('td', {}, summary(i.body), i.signer !== acct.address ? [' · from ', addr(i.signer)] : null),
      h('td', {}, i.applied ? badge('applied', 'ok') : badge(i.code || 'rejected', 'bad')), h('td', {}, txLink(i.hash)))));
    addHistory(hist.items);
    more.hidden = !next;
    more.addEventListener('click', async () => {
      more.disabled = true;
      try {
        const p = await api('/v1/accounts/' + encodeURIComponent(address) + '/history?limit=20&before=' + encodeURIComponent(next));
        if (my !== token) return;
        addHistory(p.items); next = p.next; more.hidden = !next;
      } catch (e) { more.textContent = 'Failed: ' + e.message; }
      more.disabled = false;
    });
    show(
      h('h1', {}, 'Account'),
      h('p', { class: 'mono wrap' }, acct.address),
      h('div', { class: 'stats' },
        h('div', { class: 'stat' }, h('label', {}, 'Balance (points)'), h('span', { class: 'big', id: 'balance' }, String(acct.balance))),
        h('div', { class: 'stat' }, h('label', {}, 'Expiring within 30 days'), h('span', { class: 'big' + (soonPts ? ' warn-text' : '') }, num(soonPts))),
        h('div', { class: 'stat' }, h('label', {}, 'Next nonce'), h('span', { class: 'big' }, num(acct.nonce)))),
      h('p', { class: 'muted' }, 'As of block ', blockLink(acct.height), '.'),
      section('Balance by issuer', table(['Issuer', 'Points'], Object.entries(acct.by_issuer).map(([i, n]) => [merchant(i), num(n)]), 'No points.')),
      section('Lots', table(['Issuer', 'Points', 'Expires (UTC)'], acct.lots.map((l) => {
        const hot = soon.has(l.issuer + '|' + l.expiry_ms);
        return h('tr', { class: hot ? 'soon' : null }, h('td', {}, merchant(l.issuer)), h('td', {}, num(l.amount)),
          h('td', {}, utcDate(l.expiry_ms), hot ? [' ', badge('expires within 30 days', 'warn')] : null));
      }), 'No lots.')),
      section('History', hist.items.length ? h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Time (UTC)', 'Block', 'Kind', 'Summary', 'Result', 'Tx'].map((x) => h('th', {}, x)))), histBody)) : h('p', { class: 'muted' }, 'No transactions.'), more));
  };

  pages.merchants = async (my) => {
    const m = await api('/v1/merchants');
    if (my !== token) return;
    show(h('h1', {}, 'Merchants'), h('p', { class: 'muted' }, 'As of block ', blockLink(m.height), '.'),
      section('Points by merchant', barChart({ id: 'merchant-points', label: 'Issued, redeemed and outstanding points per merchant', categories: m.merchants.map((x) => x.id),
        series: [{ name: 'issued', values: m.merchants.map((x) => x.issued) }, { name: 'redeemed', values: m.merchants.map((x) => x.redeemed) },
          { name: 'outstanding', values: m.merchants.map((x) => x.outstanding) }] })),
      section('Points', table(['Merchant', 'Status', 'Issued', 'Redeemed', 'Expired', 'Outstanding', 'Redeemed here', 'Circulation'],
        m.merchants.map((x) => [h('span', {}, h('strong', {}, x.id), ' ', x.name), badge(x.status, x.status === 'active' ? 'ok' : 'bad'),
          num(x.issued), num(x.redeemed), num(x.expired), num(x.outstanding), num(x.redeemed_here), (x.circulation_rate * 100).toFixed(1) + ' %']))),
      section('Policies', table(['Merchant', 'Value of 100 pts', 'Validity', 'Daily issue cap', 'Min. redemption', 'Outstanding cap', 'Key'],
        m.merchants.map((x) => { const p = x.policy || {}; return [x.id, money((p.point_value_minor || 0) * 100), (p.validity_days == null ? '—' : p.validity_days + ' days'),
          num(p.daily_issue_cap), num(p.min_redemption), num(p.outstanding_cap), addr(x.key)]; }))));
  };

  pages.settlement = async (my) => {
    const [s, m] = await Promise.all([api('/v1/settlement'), api('/v1/merchants')]);
    if (my !== token) return;
    const ids = [...new Set([...m.merchants.map((x) => x.id), ...s.claims.flatMap((c) => [c.creditor, c.debtor])])].sort();
    const cell = {};
    for (const c of s.claims) cell[c.creditor + '|' + c.debtor] = c;
    const matrix = h('div', { class: 'scroll' }, h('table', { class: 'matrix' },
      h('thead', {}, h('tr', {}, h('th', {}, 'creditor ↓ / debtor →'), ids.map((d) => h('th', {}, d)))),
      h('tbody', {}, ids.map((c) => h('tr', {}, h('th', {}, c), ids.map((d) => {
        const x = cell[c + '|' + d];
        if (!x || (!x.outstanding_points && !x.outstanding_value_centiminor)) return h('td', { class: 'muted' }, c === d ? '' : '—');
        return h('td', { class: 'owed' }, h('strong', {}, money(x.outstanding_value_centiminor)), h('br'), h('small', {}, num(x.outstanding_points) + ' pts'));
      }))))));
    show(h('h1', {}, 'Settlement'),
      h('p', { class: 'muted' }, 'Who owes whom, as of block ', blockLink(s.height), ': each cell is what the debtor (column) still owes the creditor (row) for its points redeemed there. Values in currency units, points below.'),
      section('Outstanding', matrix),
      section('Claims', table(['Creditor', 'Debtor', 'Redeemed', 'Confirmed paid', 'Outstanding'], s.claims.map((c) => [c.creditor, c.debtor,
        num(c.redeemed_points) + ' pts · ' + money(c.redeemed_value_centiminor), num(c.confirmed_points) + ' pts · ' + money(c.confirmed_value_centiminor),
        h('strong', {}, num(c.outstanding_points) + ' pts · ' + money(c.outstanding_value_centiminor))]), 'No claims yet.')));
  };

  pages.governance = async (my) => {
    const p = await api('/v1/proposals');
    if (my !== token) return;
    const tone = (l) => (/Executed/.test(l) ? 'ok' : /Open/.test(l) ? 'warn' : 'bad');
    show(h('h1', {}, 'Governance'), h('p', { class: 'muted' }, 'As of block ', blockLink(p.height), '.'),
      section('Proposals', table(['#', 'Action', 'Proposer', 'Votes', 'Heights', 'Status'], p.proposals.map((x) => {
        const votes = x.votes || [];
        const yes = votes.filter((v) => v[1]).map((v) => v[0]);
        const no = votes.filter((v) => !v[1]).map((v) => v[0]);
        const label = x.status_label || (typeof x.status === 'string' ? x.status : kindOf(x.status));
        return [String(x.id), actionText(x.action), x.proposer,
          h('span', {}, h('strong', {}, yes.length + ' yes'), yes.length ? ' (' + yes.join(', ') + ')' : '', ' · ',
            h('strong', {}, no.length + ' no'), no.length ? ' (' + no.join(', ') + ')' : ''),
          ['#', x.created_height, ' → #', x.deadline_height], badge(label, tone(label))];
      }), 'No proposals yet.')));
  };

  pages.network = async (my) => {
    const s = await api('/v1/status');
    if (my !== token) return;
    const lag = Date.now() - s.timestamp_ms;
    show(h('h1', {}, 'Network'),
      h('div', { class: 'stats' },
        h('div', { class: 'stat' }, h('label', {}, 'Height'), h('span', { class: 'big' }, num(s.height))),
        h('div', { class: 'stat' }, h('label', {}, 'Finality lag'), h('span', { class: 'big' + (lag > 10000 ? ' warn-text' : '') }, (lag / 1000).toFixed(1) + ' s')),
        h('div', { class: 'stat' }, h('label', {}, 'Sync'), s.syncing ? badge('syncing', 'warn') : badge('in sync', 'ok'))),
      section('Node', fields([['Chain', s.chain_id], ['Version', s.version], ['Tip', [blockLink(s.height), ' ', link('#/block/' + s.height, s.tip_hash, 'mono')]],
        ['Head block time', utc(s.timestamp_ms) + ' (' + ago(s.timestamp_ms) + ')'], ['State root', mono(s.state_root)], ['View', num(s.view)],
        ['Validator', s.is_validator ? 'yes' : 'no'], ['Best peer height', num(s.best_peer_height)], ['Mempool', num(s.mempool) + ' pending']])),
      section('Validators (' + s.validators.length + ')', table(['Merchant', 'Key'], s.validators.map((v) => [v.id, addr(v.key)]))),
      section('Peers (' + s.peers.length + ')', table(['Peer id', 'Key', 'Member'], s.peers.map((p) => [mono(p.peer_id), addr(p.key), p.member ? 'yes' : 'no']), 'No peers connected.')),
      h('p', { class: 'muted' }, 'Refreshing every 2 s.'));
    const t = setTimeout(() => { if (my === token) route(); }, 2000);
    cleanups.push(() => clearTimeout(t));
  };

  // ---- router ----------------------------------------------------------------
  async function route() {
    cleanups.forEach((f) => f());
    cleanups = [];
    const my = ++token;
    const parts = location.hash.replace(/^#\/?/, '').split('/');
    const name = parts[0] || 'home';
    const arg = decodeURIComponent(parts.slice(1).join('/'));
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
    if (name === 'search') return search(arg, true);
    // Another page: the box no longer holds what is shown (a search that
    // lands on its result keeps its query until the reader moves on).
    if (lastSearch !== location.hash) document.getElementById('q').value = '';
    lastSearch = null;
    const page = pages[name];
    if (!page) return show(errorBox('No such page: ' + location.hash), link('#/', 'Back to the latest blocks'));
    if (!main.firstChild || main.dataset.page !== name) show(h('p', { class: 'muted' }, 'Loading…'));
    main.dataset.page = name;
    try {
      await page(my, arg);
    } catch (e) {
      if (my === token) show(errorBox(e.message || String(e), e.status ? null : 'Is the node running?'));
    }
  }

  document.getElementById('search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    search(document.getElementById('q').value);
  });
  window.addEventListener('hashchange', route);
  api('/v1/status').then((s) => append(document.getElementById('footer'), [' · chain ', s.chain_id, ' · v', s.version])).catch(() => {});
  // Label merchant keys by id where the list is at hand; never wait long for it.
  Promise.race([api('/v1/merchants').then((m) => m.merchants.forEach((x) => { names[x.key] = x.id; })),
    new Promise((ok) => setTimeout(ok, 1000))]).catch(() => {}).then(route);
})();

// meshdeploy's read-only web console (docs/console.md). It reads the node's JSON API (docs/api.md)
// from the same origin and builds the page with DOM calls only: every value from the API (host
// names, messages, log tails) is hostile and reaches the page as text (textContent / text nodes),
// never as markup. No inline script or style (the page is served with CSP default-src 'self').
'use strict';

(() => {
  const LIST_POLL_MS = 2000;      // deployments list and members refresh
  const SLOW_POLL_MS = 10000;     // revisions refresh
  const LONG_POLL_MS = 25000;     // a deployment's long poll (?waitVersion=&timeoutMs=)
  const RETRY_MS = 2000;          // after a failed request
  const MAX_APPS = 50;            // revisions view: at most this many applications at once
  const DEPLOYMENT_STATUSES = ['Created', 'Queued', 'InProgress', 'Succeeded', 'Failed', 'Stopped'];

  const view = document.getElementById('view');
  const problem = document.getElementById('problem');
  const updated = document.getElementById('updated');

  // Each navigation starts a new generation; work of an older one stops at its next step.
  let generation = 0;
  let aborter = new AbortController();

  // ---- DOM helpers: text only -------------------------------------------------------------
  // el('td', {class: 'x'}, 'text', child...) builds an element; strings become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function badge(status) {
    const s = String(status || 'Unknown');
    // The class comes from a fixed list, never from the data itself.
    const known = ['Created', 'Queued', 'InProgress', 'Succeeded', 'Failed', 'Stopped', 'Pending',
      'Skipped', 'Unknown', 'alive', 'suspect', 'dead', 'left'];
    return el('span', {class: 'badge st-' + (known.includes(s) ? s : 'other')}, s);
  }

  function table(caption, headers, rows, extraClass) {
    const head = el('tr', {}, headers.map((h) => el('th', {scope: 'col'}, h)));
    return el('div', {class: 'table-wrap'},
      el('table', {class: extraClass || ''}, el('caption', {}, caption), el('thead', {}, head),
        el('tbody', {}, rows)));
  }

  function dl(pairs) {
    return el('dl', {class: 'facts'}, pairs.filter((p) => p[1] !== undefined && p[1] !== null &&
        p[1] !== '').map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }

  function hashLink(text, hash) { return el('a', {href: hash}, text); }

  // ---- formatting --------------------------------------------------------------------------
  function time(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function duration(ms) {
    if (!Number.isFinite(ms) || ms < 0) return '';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
    const s = Math.round(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function span(start, end) {
    const a = Date.parse(start || '');
    if (Number.isNaN(a)) return '';
    const b = end ? Date.parse(end) : Date.now();
    if (Number.isNaN(b)) return '';
    return duration(b - a) + (end ? '' : ' so far');
  }

  // A long id cut for a table cell; the whole one is in the cell's title.
  function short(id) {
    const s = String(id || '');
    return s.length > 20 ? s.slice(0, 19) + '…' : s;
  }

  function bytes(n) {
    if (!Number.isFinite(n)) return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }

  // ---- API ---------------------------------------------------------------------------------
  class ApiError extends Error {}

  async function request(path, signal) {
    let r;
    try {
      r = await fetch(path, {signal, cache: 'no-store', credentials: 'same-origin'});
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError('cannot reach the node (' + e.message + ')');
    }
    if (!r.ok) {
      let why = 'HTTP ' + r.status;
      try {
        const j = await r.json();
        if (j && j.error) why = String(j.error.code) + ': ' + String(j.error.message);
      } catch (_) { /* not JSON: keep the status */ }
      throw new ApiError(why);
    }
    return r;
  }

  async function api(path, signal) { return (await request(path, signal)).json(); }
  async function text(path, signal) { return (await request(path, signal)).text(); }

  function showProblem(e) {
    if (e && e.name === 'AbortError') return;
    problem.textContent = 'The console could not read the API: ' + (e && e.message ? e.message : e) +
      '. Retrying.';
    problem.hidden = false;
  }

  // After a view drew what it read: clears the banner, and marks <main> with the route it shows
  // (data-rendered, for tests and for a person's tools: the view is current, not "Loading").
  function fresh(gen) {
    if (gen === generation) view.dataset.rendered = location.hash || '#/deployments';
    problem.hidden = true;
    problem.textContent = '';
    updated.textContent = 'Updated ' + new Date().toTimeString().slice(0, 8);
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, {once: true});
    });
  }

  // Calls `step` now and then every `ms` until the view changes; a failing step shows the
  // problem banner and is retried.
  async function every(ms, gen, signal, step) {
    while (gen === generation) {
      try {
        await step();
        fresh(gen);
      } catch (e) {
        if (gen !== generation) return;
        showProblem(e);
      }
      await sleep(ms, signal);
    }
  }

  // ---- routing -----------------------------------------------------------------------------
  function parseHash() {
    const h = location.hash.replace(/^#\/?/, '');
    const q = h.indexOf('?');
    const path = (q < 0 ? h : h.slice(0, q)).split('/').filter(Boolean).map(decodeURIComponent);
    const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
    return {path, params};
  }

  function hashWith(base, params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) p.set(k, v);
    const s = p.toString();
    return base + (s ? '?' + s : '');
  }

  function route() {
    aborter.abort();
    aborter = new AbortController();
    const gen = ++generation;
    const {path, params} = parseHash();
    const section = path[0] || 'deployments';
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    delete view.dataset.rendered;
    view.replaceChildren(el('p', {class: 'muted'}, 'Loading…'));
    if (section === 'deployments' && path[1]) {
      showDeployment(path[1], gen, aborter.signal);
    } else if (section === 'members') {
      showMembers(gen, aborter.signal);
    } else if (section === 'revisions') {
      showRevisions(params, gen, aborter.signal);
    } else {
      showDeployments(params, gen, aborter.signal);
    }
  }

  // ---- deployments list --------------------------------------------------------------------
  async function showDeployments(params, gen, signal) {
    document.title = 'Deployments - meshdeploy';
    const app = params.get('app') || '';
    const group = params.get('group') || '';
    const status = params.get('status') || '';
    const go = (next) => { location.hash = hashWith('#/deployments', next); };

    const appSelect = el('select', {id: 'f-app', name: 'app'}, el('option', {value: ''}, 'All'));
    const groupSelect = el('select', {id: 'f-group', name: 'group', disabled: !app},
      el('option', {value: ''}, 'All'));
    const statusSelect = el('select', {id: 'f-status', name: 'status'},
      el('option', {value: ''}, 'All'),
      DEPLOYMENT_STATUSES.map((s) => el('option', {value: s, selected: s === status}, s)));
    appSelect.addEventListener('change', () => go({app: appSelect.value, status}));
    groupSelect.addEventListener('change', () => go({app, group: groupSelect.value, status}));
    statusSelect.addEventListener('change', () => go({app, group, status: statusSelect.value}));
    const filters = el('form', {class: 'filters', role: 'search', 'aria-label': 'Filter deployments'},
      el('label', {for: 'f-app'}, 'Application'), appSelect,
      el('label', {for: 'f-group'}, 'Group'), groupSelect,
      el('label', {for: 'f-status'}, 'Status'), statusSelect);
    filters.addEventListener('submit', (e) => e.preventDefault());
    const body = el('div', {id: 'deployments'});
    view.replaceChildren(el('h1', {}, 'Deployments'), filters, body);

    // The filters' choices, once per visit; a failure leaves the current choice selectable.
    try {
      const apps = (await api('/v1/apps', signal)).applications || [];
      for (const a of apps) {
        appSelect.append(el('option', {value: a.name, selected: a.name === app}, a.name));
      }
      if (app) {
        const groups = (await api('/v1/groups?app=' + encodeURIComponent(app), signal))
          .deploymentGroups || [];
        for (const g of groups) {
          groupSelect.append(el('option', {value: g.name, selected: g.name === group}, g.name));
        }
      }
    } catch (e) {
      if (gen !== generation) return;
      showProblem(e);
    }

    let last = null;  // what the table shows, to leave it alone (and clickable) when unchanged
    await every(LIST_POLL_MS, gen, signal, async () => {
      const q = new URLSearchParams();
      if (app) q.set('app', app);
      if (group) q.set('group', group);
      const all = (await api('/v1/deployments' + (q.toString() ? '?' + q : ''), signal))
        .deployments || [];
      if (gen !== generation) return;
      const shown = status ? all.filter((d) => d.status === status) : all;
      const key = JSON.stringify([all.length, shown]);
      const running = shown.some((d) => !d.completeTime);
      if (key === last && !running) return;
      last = key;
      const rows = shown.map((d) => {
        const o = d.overview || {};
        const hosts = ['Succeeded', 'Failed', 'InProgress', 'Pending', 'Skipped', 'Unknown']
          .filter((k) => o[k]).map((k) => o[k] + ' ' + k).join(', ');
        return el('tr', {'data-id': d.deploymentId},
          el('th', {scope: 'row'}, hashLink(d.deploymentId,
            '#/deployments/' + encodeURIComponent(d.deploymentId))),
          el('td', {}, d.application), el('td', {}, d.deploymentGroup),
          el('td', {class: 'mono', title: d.revision}, short(d.revision)),
          el('td', {class: 'status'}, badge(d.status)), el('td', {}, hosts),
          el('td', {}, time(d.createTime)), el('td', {}, span(d.createTime, d.completeTime)));
      });
      const what = shown.length + ' of ' + all.length + ' deployment' + (all.length === 1 ? '' : 's');
      body.replaceChildren(shown.length
        ? table(what + ', newest first',
          ['Deployment', 'Application', 'Group', 'Revision', 'Status', 'Hosts', 'Created',
            'Duration'], rows, 'deployments')
        : el('p', {class: 'muted'}, 'No deployments' + (all.length ? ' match the filters.' : ' yet.')));
    });
  }

  // ---- one deployment ----------------------------------------------------------------------
  async function showDeployment(id, gen, signal) {
    document.title = id + ' - meshdeploy';
    const base = '/v1/deployments/' + encodeURIComponent(id);
    // Kept across re-renders: the event a person picked and the full logs they loaded.
    const state = {selected: null, logs: new Map(), doc: null};
    const rerender = () => { if (state.doc && gen === generation) renderDeployment(state, base, gen, signal); };
    state.rerender = rerender;
    let version = null;
    while (gen === generation) {
      try {
        const path = version === null ? base
          : base + '?waitVersion=' + version + '&timeoutMs=' + LONG_POLL_MS;
        const doc = await api(path, signal);
        if (gen !== generation) return;
        if (doc.version !== version || state.doc === null) {
          version = doc.version;
          state.doc = doc;
          rerender();
        }
        fresh(gen);
      } catch (e) {
        if (gen !== generation) return;
        showProblem(e);
        if (state.doc === null) {
          view.replaceChildren(el('h1', {}, 'Deployment ' + id),
            el('p', {class: 'muted'}, 'Not available: ' + (e.message || e)));
        }
        await sleep(RETRY_MS, signal);
      }
    }
  }

  function eventNames(hosts) {
    const names = [];
    for (const h of hosts) {
      for (const e of h.events || []) if (!names.includes(e.name)) names.push(e.name);
    }
    return names;
  }

  function renderDeployment(state, base, gen, signal) {
    const d = state.doc;
    const hosts = Array.isArray(d.hosts) ? d.hosts : [];
    const names = eventNames(hosts);
    const o = d.overview || {};
    const ended = ['Succeeded', 'Failed', 'Stopped'].includes(d.status);

    const rollback = d.rollbackInfo || {};
    const summary = dl([
      ['Status', badge(d.status)],
      ['Application', hashLink(d.application, hashWith('#/deployments', {app: d.application}))],
      ['Group', d.deploymentGroup],
      ['Revision', el('span', {class: 'mono'}, d.revision)],
      ['Configuration', d.deploymentConfig],
      ['Creator', d.creator],
      ['Created', time(d.createTime)],
      ['Completed', time(d.completeTime)],
      ['Duration', span(d.createTime, d.completeTime)],
      ['Rolled back by', rollback.rollbackDeploymentId],
      ['Rollback of', rollback.rollbackTriggeringDeploymentId],
      ['Error', d.errorInformation ? String(d.errorInformation.code) + ': ' +
        String(d.errorInformation.message) : null],
      ['Hosts', Object.keys(o).filter((k) => o[k]).map((k) => o[k] + ' ' + k).join(', ')],
    ]);

    const rows = hosts.map((h) => {
      const byName = new Map((h.events || []).map((e) => [e.name, e]));
      const first = (h.events || []).find((e) => e.startTime);
      const last = [...(h.events || [])].reverse().find((e) => e.endTime);
      return el('tr', {'data-host': h.host},
        el('th', {scope: 'row'}, h.host),
        el('td', {class: 'status'}, badge(h.status)),
        el('td', {}, first ? span(first.startTime, h.status === 'InProgress' ? null :
          (last ? last.endTime : null)) : ''),
        names.map((n) => {
          const e = byName.get(n);
          if (!e) return el('td', {class: 'none'}, '');
          const picked = state.selected && state.selected.host === h.host &&
            state.selected.event === n;
          return el('td', {class: 'event'},
            el('button', {type: 'button', class: 'cell' + (picked ? ' picked' : ''),
              'aria-pressed': picked ? 'true' : 'false',
              'aria-label': h.host + ' ' + n + ': ' + e.status,
              title: time(e.startTime) + (e.endTime ? ' → ' + time(e.endTime) : ''),
              onclick: () => { state.selected = {host: h.host, event: n}; state.rerender(); }},
            badge(e.status), el('span', {class: 'took'}, span(e.startTime, e.endTime))));
        }));
    });

    const failures = [];
    for (const h of hosts) {
      for (const e of h.events || []) {
        if (e.status === 'Failed') failures.push(eventDetail(state, base, h, e, signal));
      }
    }
    let picked = null;
    if (state.selected) {
      const h = hosts.find((x) => x.host === state.selected.host);
      const e = h && (h.events || []).find((x) => x.name === state.selected.event);
      if (e && e.status !== 'Failed') picked = eventDetail(state, base, h, e, signal);
    }

    view.replaceChildren(...[
      el('p', {class: 'crumbs'}, hashLink('Deployments', '#/deployments'), ' / ', d.deploymentId),
      el('h1', {}, 'Deployment ', el('span', {class: 'mono'}, d.deploymentId)),
      el('p', {class: 'live muted'}, ended ? 'Ended; still watching for late host reports.'
        : 'Live: the page updates as hosts report.'),
      summary,
      hosts.length ? table('Hosts and their lifecycle events (select an event for its details)',
        ['Host', 'Status', 'Time'].concat(names), rows, 'hosts')
        : el('p', {class: 'muted'}, 'No hosts yet.'),
      picked ? el('section', {class: 'detail', 'aria-label': 'Selected event'},
        el('h2', {}, 'Selected event'), picked) : null,
      failures.length ? el('section', {class: 'failures', 'aria-label': 'Failures'},
        el('h2', {}, 'Failures'), failures) : null,
    ].filter(Boolean));
  }

  // One host's event: times, diagnostics, its log tail, and a button for the event's whole log.
  function eventDetail(state, base, h, e, signal) {
    const key = h.host + '\n' + e.name;
    const diag = e.diagnostics || null;
    const log = el('pre', {class: 'log', tabindex: '0', 'aria-label': 'Log of ' + h.host + ' ' + e.name});
    const loaded = state.logs.get(key);
    log.textContent = loaded !== undefined ? loaded : (diag && diag.logTail ? diag.logTail : '');
    const button = el('button', {type: 'button', class: 'load-log'},
      loaded !== undefined ? 'Reload full log' : 'Show full log');
    const label = el('span', {}, loaded !== undefined ? 'Log of this event:'
      : (diag && diag.logTail ? 'Log tail:' : 'No log tail in the status.'));
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const t = await text(base + '/logs?host=' + encodeURIComponent(h.host) + '&event=' +
          encodeURIComponent(e.name), signal);
        state.logs.set(key, t);
        log.textContent = t;
        label.textContent = 'Log of this event:';
        button.textContent = 'Reload full log';
        if (!log.isConnected) button.parentNode.after(log);
      } catch (err) {
        log.textContent = 'Could not read the log: ' + (err.message || err);
      } finally {
        button.disabled = false;
      }
    });
    return el('article', {class: 'event-detail', 'data-host': h.host, 'data-event': e.name},
      el('h3', {}, h.host, ' — ', e.name, ' ', badge(e.status)),
      dl([
        ['Started', time(e.startTime)],
        ['Ended', time(e.endTime)],
        ['Took', span(e.startTime, e.endTime)],
        ['Message', e.message],
        ['Error code', diag ? diag.errorCode : null],
        ['Script', diag ? diag.scriptName : null],
        ['Diagnostics', diag ? diag.message : null],
      ]),
      el('p', {class: 'log-label'}, label, button),
      log.textContent ? log : null);
  }

  // ---- members -----------------------------------------------------------------------------
  async function showMembers(gen, signal) {
    document.title = 'Members - meshdeploy';
    const body = el('div', {id: 'members'});
    view.replaceChildren(el('h1', {}, 'Members'), body);
    let last = null;
    await every(LIST_POLL_MS, gen, signal, async () => {
      const m = await api('/v1/members', signal);
      if (gen !== generation) return;
      const key = JSON.stringify(m.members);
      if (key === last) return;
      last = key;
      const members = Array.isArray(m.members) ? m.members : [];
      const count = (s) => members.filter((x) => x.status === s).length;
      const rows = members.map((x) => el('tr', {'data-member': x.name},
        el('th', {scope: 'row'}, x.name), el('td', {class: 'status'}, badge(x.status)),
        el('td', {class: 'mono'}, x.address === null ? '' : x.address),
        el('td', {}, x.incarnation),
        el('td', {}, el('ul', {class: 'tags'}, Object.entries(x.tags || {}).map(([k, v]) =>
          el('li', {}, k + '=' + v))))));
      body.replaceChildren(
        el('p', {}, count('alive') + ' alive, ' + count('suspect') + ' suspect, ' + count('dead') +
          ' dead, ' + count('left') + ' left' + (m.gossip === 'disabled' ? ' (gossip disabled)' : '')),
        table('Cluster membership as this node sees it', ['Name', 'Health', 'Address',
          'Incarnation', 'Tags'], rows, 'members'));
    });
  }

  // ---- revisions ---------------------------------------------------------------------------
  async function showRevisions(params, gen, signal) {
    document.title = 'Revisions - meshdeploy';
    const app = params.get('app') || '';
    const appSelect = el('select', {id: 'r-app', name: 'app'}, el('option', {value: ''}, 'All'));
    appSelect.addEventListener('change', () => {
      location.hash = hashWith('#/revisions', {app: appSelect.value});
    });
    const form = el('form', {class: 'filters', role: 'search', 'aria-label': 'Choose an application'},
      el('label', {for: 'r-app'}, 'Application'), appSelect);
    form.addEventListener('submit', (e) => e.preventDefault());
    const body = el('div', {id: 'revisions'});
    view.replaceChildren(el('h1', {}, 'Revisions'), form, body);
    let filled = false;
    await every(SLOW_POLL_MS, gen, signal, async () => {
      const apps = ((await api('/v1/apps', signal)).applications || []).map((a) => a.name);
      if (gen !== generation) return;
      if (!filled) {
        for (const a of apps) appSelect.append(el('option', {value: a, selected: a === app}, a));
        filled = true;
      }
      const chosen = app ? [app] : apps.slice(0, MAX_APPS);
      const sections = [];
      for (const a of chosen) {
        const revs = (await api('/v1/revisions?app=' + encodeURIComponent(a), signal))
          .revisions || [];
        if (gen !== generation) return;
        const rows = revs.map((r) => el('tr', {},
          el('th', {scope: 'row', class: 'mono'}, r.revisionId), el('td', {}, r.bundleType),
          el('td', {}, bytes(r.size)), el('td', {}, time(r.registerTime))));
        sections.push(el('section', {'data-app': a}, el('h2', {}, a, ' ',
          el('small', {}, hashLink('deployments', hashWith('#/deployments', {app: a})))),
        revs.length ? table('Revisions of ' + a + ', newest first',
          ['Revision', 'Bundle', 'Size', 'Registered'], rows, 'revisions')
          : el('p', {class: 'muted'}, 'No revisions registered.')));
      }
      if (apps.length > chosen.length) {
        sections.push(el('p', {class: 'muted'}, 'Showing ' + chosen.length + ' of ' + apps.length +
          ' applications; choose one above.'));
      }
      body.replaceChildren(...(sections.length ? sections
        : [el('p', {class: 'muted'}, 'No applications yet.')]));
    });
  }

  // ---- start -------------------------------------------------------------------------------
  async function nodeName() {
    try {
      const h = await api('/v1/health', new AbortController().signal);
      document.getElementById('node-name').textContent = 'node ' + h.name + ' · ' + h.version;
    } catch (e) {
      showProblem(e);
    }
  }

  window.addEventListener('hashchange', route);
  nodeName();
  route();
})();

/* The merchant's orders view. It is a plain client of the merchant API
 * (/v1/orders…): the API key typed in stays in this tab's sessionStorage and
 * goes only into the Authorization header of same-origin requests. */
(function () {
  'use strict';
  var I = window.ZhifuI18n;
  var $ = function (id) { return document.getElementById(id); };
  var KEY = 'zhifu.apiKey';
  var cursor = null;
  var current = null;
  var refundKey = null;
  // The refund the merchant typed, waiting for the confirmation click.
  var pendingRefund = null;
  var closeArmed = null;

  // Fallback when sessionStorage is unavailable (some private modes).
  var memoryKey = null;

  function key() {
    try { return sessionStorage.getItem(KEY) || memoryKey; } catch (e) { return memoryKey; }
  }

  function say(text, isError) {
    $('admin-message').textContent = text || '';
    $('admin-message').classList.toggle('error', !!isError);
  }

  function ApiFailure(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  function api(method, path, body, extraHeaders) {
    var headers = { Accept: 'application/json', Authorization: 'Bearer ' + key() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    for (var h in extraHeaders || {}) headers[h] = extraHeaders[h];
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store'
    }).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (e) { j = null; }
        if (!r.ok) {
          var err = (j && j.error) || {};
          if (r.status === 401) signOut(true);
          throw new ApiFailure(r.status, err.code || 'http_' + r.status, err.message || 'HTTP ' + r.status);
        }
        return j;
      });
    }, function (e) {
      throw new ApiFailure(0, 'network', e.message);
    });
  }

  function fail(e) {
    if (e && e.status === 401) return;
    say(I.t('admin.error', { message: (e && (e.message || e.code)) || String(e) }), true);
  }

  function when(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString(I.lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
  }

  function statusBadge(s) {
    var span = document.createElement('span');
    span.className = 'badge badge-' + s;
    span.setAttribute('data-status', s);
    span.textContent = I.t('status.' + s);
    return span;
  }

  function show(view) {
    $('key-view').hidden = view !== 'key';
    $('list-view').hidden = view !== 'list';
    $('detail-view').hidden = view !== 'detail';
    $('subs-view').hidden = view !== 'subs';
    $('sub-detail-view').hidden = view !== 'sub-detail';
    $('sign-out').hidden = view === 'key';
    $('admin-tabs').hidden = view === 'key';
    var subs = view === 'subs' || view === 'sub-detail';
    $('tab-orders').setAttribute('aria-pressed', subs ? 'false' : 'true');
    $('tab-subscriptions').setAttribute('aria-pressed', subs ? 'true' : 'false');
  }

  function signOut(badKey) {
    memoryKey = null;
    try { sessionStorage.removeItem(KEY); } catch (e) { /* ignore */ }
    show('key');
    say(badKey ? I.t('admin.badKey') : '', !!badKey);
    $('api-key').value = '';
    $('api-key').focus();
  }

  // ---- list ---------------------------------------------------------------
  function loadList(append) {
    if (!append) cursor = null;
    var q = '?limit=20';
    var s = $('status-filter').value;
    if (s) q += '&status=' + encodeURIComponent(s);
    if (append && cursor) q += '&cursor=' + encodeURIComponent(cursor);
    say(I.t('admin.loading'));
    return api('GET', '/v1/orders' + q).then(function (page) {
      say('');
      var body = $('orders-body');
      if (!append) body.textContent = '';
      (page.data || []).forEach(function (o) { body.appendChild(row(o)); });
      cursor = page.next_cursor || null;
      $('more').hidden = !cursor;
      $('orders-empty').hidden = body.children.length > 0;
    }).catch(fail);
  }

  var COLUMNS = ['admin.created', 'admin.outTradeNo', 'admin.subject', 'admin.amount', 'admin.status'];

  function row(o) {
    var tr = document.createElement('tr');
    tr.setAttribute('data-order-id', o.id);
    var cells = [when(o.created_at), null, o.subject, '¥' + o.total_amount, null];
    cells.forEach(function (c, i) {
      var td = document.createElement(i === 1 ? 'th' : 'td');
      // The label a phone shows in front of the value (the rows stack there).
      td.setAttribute('data-label', I.t(COLUMNS[i]));
      if (i === 1) {
        td.scope = 'row';
        var b = document.createElement('button');
        b.type = 'button';
        b.className = 'link';
        b.textContent = o.out_trade_no;
        b.setAttribute('aria-label', I.t('admin.view') + ' ' + o.out_trade_no);
        b.addEventListener('click', function () { openDetail(o.id); });
        td.appendChild(b);
      } else if (i === 4) {
        td.appendChild(statusBadge(o.status));
      } else {
        td.textContent = c;
        if (i === 3) td.className = 'num';
      }
      tr.appendChild(td);
    });
    return tr;
  }

  // ---- detail -------------------------------------------------------------
  function fact(dl, label, value, id) {
    var dt = document.createElement('dt');
    dt.textContent = I.t(label);
    var dd = document.createElement('dd');
    if (value instanceof Node) dd.appendChild(value);
    else dd.textContent = value == null || value === '' ? '—' : String(value);
    if (id) dd.id = id;
    dl.appendChild(dt);
    dl.appendChild(dd);
  }

  function fen(yuan) {
    var m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(String(yuan || ''));
    if (!m) return null;
    return Number(m[1]) * 100 + Number(((m[2] || '') + '00').slice(0, 2));
  }

  function yuan(f) {
    return Math.floor(f / 100) + '.' + ('0' + (f % 100)).slice(-2);
  }

  function renderDetail(o) {
    current = o;
    var dl = $('detail-facts');
    dl.textContent = '';
    fact(dl, 'admin.status', statusBadge(o.status), 'detail-status');
    fact(dl, 'admin.outTradeNo', o.out_trade_no);
    fact(dl, 'admin.id', o.id);
    fact(dl, 'admin.subject', o.subject);
    fact(dl, 'admin.amount', '¥' + o.total_amount, 'detail-amount');
    fact(dl, 'admin.refunded', '¥' + (o.refunded_amount || '0.00'), 'detail-refunded');
    fact(dl, 'admin.tradeNo', o.trade_no);
    fact(dl, 'admin.buyer', o.buyer_logon_id);
    fact(dl, 'admin.created', when(o.created_at));
    fact(dl, 'admin.paidAt', when(o.paid_at));
    fact(dl, 'admin.expiresAt', when(o.expires_at));
    fact(dl, 'admin.metadata', o.metadata ? JSON.stringify(o.metadata) : null);
    var left = (fen(o.total_amount) || 0) - (fen(o.refunded_amount) || 0);
    $('refund-box').hidden = !(o.status === 'paid' && left > 0);
    // The amount is typed, never prefilled: a refund is a decision.
    $('refund-left').textContent = I.t('admin.refundLeft', { amount: yuan(left) });
    hideRefundConfirm();
    $('close-box').hidden = o.status !== 'pending';
    disarmClose();
  }

  /** Sections the API may or may not offer; shown when /openapi.json documents them. */
  var EXTRAS = [
    ['events', 'admin.events', eventsTable],
    ['refunds', 'admin.refunds', null],
    ['notifications', 'admin.notifications', null]
  ];
  var offered = null;

  function discover() {
    if (offered) return Promise.resolve(offered);
    return fetch('/openapi.json', { headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : { paths: {} }; })
      .catch(function () { return { paths: {} }; })
      .then(function (doc) {
        var paths = (doc && doc.paths) || {};
        offered = EXTRAS.filter(function (x) {
          var p = paths['/v1/orders/{id}/' + x[0]];
          return p && p.get;
        });
        return offered;
      });
  }

  function loadExtras(id) {
    var box = $('detail-extra');
    box.textContent = '';
    discover().then(function (list) {
      if (!current || current.id !== id) return;
      list.forEach(function (x) {
        var holder = document.createElement('div');
        holder.id = 'detail-' + x[0];
        box.appendChild(holder);
        api('GET', '/v1/orders/' + encodeURIComponent(id) + '/' + x[0]).then(function (j) {
          var rows = Array.isArray(j) ? j : j && Array.isArray(j.data) ? j.data : null;
          if (!rows || !current || current.id !== id) return;
          var h = document.createElement('h3');
          h.textContent = I.t(x[1]);
          holder.appendChild(h);
          holder.appendChild(rows.length ? (x[2] || table)(rows, I.t(x[1])) : text(I.t('admin.nothing')));
        }).catch(fail);
      });
      // Say what this server does not expose rather than hide it silently.
      var missing = EXTRAS.filter(function (x) { return list.indexOf(x) < 0; })
        .map(function (x) { return I.t(x[1]); });
      if (missing.length) {
        var note = text(I.t('admin.notExposed', { what: missing.join(I.lang === 'zh' ? '、' : ', ') }));
        note.className = 'help';
        box.appendChild(note);
      }
    });
  }

  /** State changes, each with its webhook delivery state and attempts. */
  function eventsTable(rows, label) {
    return table(rows.map(function (e) {
      var w = e.webhook || {};
      var tries = (w.deliveries || []).map(function (d) {
        return '#' + d.attempt + ' ' + when(d.at) + ' → ' + (d.http_status || d.error || '?');
      });
      var o = {};
      o[I.t('admin.when')] = when(e.created_at);
      o[I.t('admin.event')] = e.type;
      o[I.t('admin.status')] = (e.previous_status ? I.t('status.' + e.previous_status) + ' → ' : '') + I.t('status.' + e.status);
      o[I.t('admin.refunded')] = e.refunded_amount != null ? '¥' + e.refunded_amount : '';
      o[I.t('admin.source')] = e.source;
      o[I.t('admin.webhooks')] = (w.state || '—') + (w.attempts ? ' (' + w.attempts + ')' : '') +
        (w.last_error ? ' — ' + w.last_error : '') + (tries.length ? '\n' + tries.join('\n') : '');
      return o;
    }), label);
  }

  function text(s) {
    var p = document.createElement('p');
    p.textContent = s;
    return p;
  }

  function table(rows, label) {
    var cols = [];
    rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0) cols.push(k); }); });
    var wrap = document.createElement('div');
    wrap.className = 'table-wrap';
    // Scrollable regions must be reachable by keyboard.
    wrap.tabIndex = 0;
    wrap.setAttribute('role', 'region');
    wrap.setAttribute('aria-label', label);
    var t = document.createElement('table');
    t.className = 'stack';
    var head = t.createTHead().insertRow();
    cols.forEach(function (c) {
      var th = document.createElement('th');
      th.scope = 'col';
      th.textContent = c;
      head.appendChild(th);
    });
    var body = t.createTBody();
    rows.forEach(function (r) {
      var tr = body.insertRow();
      cols.forEach(function (c) {
        var v = r[c];
        var td = tr.insertCell();
        td.setAttribute('data-label', c);
        td.textContent = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
      });
    });
    wrap.appendChild(t);
    return wrap;
  }

  function openDetail(id) {
    $('refund-amount').value = '';
    $('refund-reason').value = '';
    refundKey = null;
    say(I.t('admin.loading'));
    return api('GET', '/v1/orders/' + encodeURIComponent(id)).then(function (o) {
      say('');
      renderDetail(o);
      show('detail');
      $('detail-heading').focus();
      loadExtras(o.id);
    }).catch(fail);
  }

  function reloadDetail() {
    return api('GET', '/v1/orders/' + encodeURIComponent(current.id)).then(function (o) {
      renderDetail(o);
      loadExtras(o.id);
    });
  }

  function randomKey() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return 'admin-refund-' + Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join('');
  }

  function hideRefundConfirm() {
    pendingRefund = null;
    $('refund-confirm-box').hidden = true;
    $('refund-confirm-text').textContent = '';
  }

  function refundLeftFen() {
    return current ? (fen(current.total_amount) || 0) - (fen(current.refunded_amount) || 0) : 0;
  }

  // Step 1: check the amount and ask; nothing is sent yet.
  $('refund-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var input = $('refund-amount');
    var amount = input.value.trim();
    var f = fen(amount);
    var left = refundLeftFen();
    if (f == null || f <= 0 || f > left) {
      input.setAttribute('aria-invalid', 'true');
      say(f != null && f > left
        ? I.t('admin.refundTooMuch', { amount: yuan(left) })
        : I.t('admin.error', { message: I.t('admin.refundAmount') }), true);
      hideRefundConfirm();
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    say('');
    var reason = $('refund-reason').value.trim();
    pendingRefund = { amount: yuan(f), reason: reason, order: current.id };
    $('refund-confirm-text').textContent = I.t('admin.refundAsk', {
      amount: pendingRefund.amount,
      order: current.out_trade_no,
      subject: current.subject
    });
    $('refund-confirm-box').hidden = false;
    $('refund-confirm').focus();
  });

  // A changed amount or reason needs a new confirmation.
  $('refund-amount').addEventListener('input', hideRefundConfirm);
  $('refund-reason').addEventListener('input', hideRefundConfirm);
  $('refund-cancel').addEventListener('click', function () {
    hideRefundConfirm();
    $('refund-amount').focus();
  });

  // Step 2: the confirmed refund is sent.
  $('refund-confirm').addEventListener('click', function () {
    var p = pendingRefund;
    if (!p || !current || p.order !== current.id) { hideRefundConfirm(); return; }
    // One key per intended refund: a retried click cannot refund twice.
    if (!refundKey || refundKey.amount !== p.amount) refundKey = { amount: p.amount, key: randomKey() };
    var body = { amount: p.amount };
    if (p.reason) body.reason = p.reason;
    $('refund-confirm').disabled = true;
    $('refund-submit').disabled = true;
    api('POST', '/v1/orders/' + encodeURIComponent(current.id) + '/refunds', body, { 'Idempotency-Key': refundKey.key })
      .then(function (r) {
        refundKey = null;
        $('refund-amount').value = '';
        $('refund-reason').value = '';
        hideRefundConfirm();
        say(I.t('admin.refundDone', { amount: r.amount, status: r.status }));
        return reloadDetail();
      })
      .catch(fail)
      .then(function () {
        $('refund-confirm').disabled = false;
        $('refund-submit').disabled = false;
      });
  });

  function disarmClose() {
    if (closeArmed) clearTimeout(closeArmed);
    closeArmed = null;
    $('close-order').textContent = I.t('admin.close');
  }

  $('close-order').addEventListener('click', function () {
    if (!closeArmed) {
      $('close-order').textContent = I.t('admin.closeConfirm');
      closeArmed = setTimeout(disarmClose, 5000);
      return;
    }
    disarmClose();
    $('close-order').disabled = true;
    api('POST', '/v1/orders/' + encodeURIComponent(current.id) + '/close', {})
      .then(function (o) {
        // `closing`: the buyer may still hold a payment link until it
        // expires; Zhifu refunds a payment that arrives anyway.
        say(I.t(o && o.status === 'closing' ? 'admin.closing' : 'admin.closed'));
        return reloadDetail();
      })
      .catch(fail)
      .then(function () { $('close-order').disabled = false; });
  });

  // ---- subscriptions (GET/POST /v1/subscriptions…) -------------------------
  var subsCursor = null;
  var currentSub = null;

  function perPeriod(x) {
    return I.t('shop.perPeriod', { amount: x.amount, period: I.period(x.period) });
  }

  function subBadge(st) {
    var span = document.createElement('span');
    span.className = 'badge badge-' + st;
    span.setAttribute('data-status', st);
    span.textContent = I.t('substatus.' + st);
    return span;
  }

  function loadSubs(append) {
    if (!append) subsCursor = null;
    var q = '?limit=20';
    var st = $('subs-status-filter').value;
    if (st) q += '&status=' + encodeURIComponent(st);
    if (append && subsCursor) q += '&cursor=' + encodeURIComponent(subsCursor);
    say(I.t('admin.loading'));
    return api('GET', '/v1/subscriptions' + q).then(function (page) {
      say('');
      var body = $('subs-body');
      if (!append) body.textContent = '';
      (page.data || []).forEach(function (x) { body.appendChild(subRow(x)); });
      subsCursor = page.next_cursor || null;
      $('subs-more').hidden = !subsCursor;
      $('subs-empty').hidden = body.children.length > 0;
    }).catch(fail);
  }

  var SUB_COLUMNS = ['admin.created', 'admin.subject', 'admin.perPeriod', 'admin.status', 'admin.periodsCharged', 'admin.nextCharge'];

  function subRow(x) {
    var tr = document.createElement('tr');
    tr.setAttribute('data-subscription-id', x.id);
    var charged = x.periods_charged + (x.max_periods ? ' / ' + x.max_periods : '');
    var cells = [when(x.created_at), null, perPeriod(x), null, charged, x.next_charge_date || '—'];
    cells.forEach(function (c, i) {
      var td = document.createElement(i === 1 ? 'th' : 'td');
      td.setAttribute('data-label', I.t(SUB_COLUMNS[i]));
      if (i === 1) {
        td.scope = 'row';
        var b = document.createElement('button');
        b.type = 'button';
        b.className = 'link';
        b.textContent = x.subject;
        b.setAttribute('aria-label', I.t('admin.view') + ' ' + x.subject + ' ' + x.id);
        b.addEventListener('click', function () { openSub(x.id); });
        td.appendChild(b);
      } else if (i === 3) {
        td.appendChild(subBadge(x.status));
      } else {
        td.textContent = c;
        if (i === 2 || i === 4) td.className = 'num';
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function hideSubCancel() {
    $('sub-cancel-confirm-box').hidden = true;
    $('sub-cancel-confirm-text').textContent = '';
  }

  function renderSub(x) {
    currentSub = x;
    var dl = $('sub-facts');
    dl.textContent = '';
    fact(dl, 'admin.status', subBadge(x.status), 'sub-status');
    fact(dl, 'admin.subject', x.subject);
    fact(dl, 'admin.perPeriod', perPeriod(x), 'sub-amount');
    fact(dl, 'admin.periodsCharged', x.periods_charged, 'sub-periods');
    fact(dl, 'admin.maxPeriods', x.max_periods || I.t('admin.unlimited'));
    fact(dl, 'admin.firstCharge', x.first_charge_date);
    fact(dl, 'admin.nextCharge', x.next_charge_date, 'sub-next');
    fact(dl, 'admin.failedAttempts', x.failed_attempts);
    fact(dl, 'admin.subId', x.id);
    fact(dl, 'admin.externalAgreementNo', x.external_agreement_no);
    fact(dl, 'admin.agreementNo', x.agreement_no);
    fact(dl, 'admin.channel', x.channel);
    fact(dl, 'admin.created', when(x.created_at));
    fact(dl, 'admin.activatedAt', when(x.activated_at));
    fact(dl, 'admin.canceledAt', when(x.canceled_at));
    fact(dl, 'admin.metadata', x.metadata ? JSON.stringify(x.metadata) : null);
    var ended = x.status === 'canceled' || x.status === 'completed';
    $('sub-cancel-box').hidden = ended;
    hideSubCancel();
    var charges = x.charges || [];
    var box = $('sub-charges');
    box.textContent = '';
    box.appendChild(charges.length ? table(charges.map(function (o) {
      var r = {};
      // The contract names it `period`; a backend may say `subscription_period` or keep it in metadata.
      r[I.t('admin.period')] = o.period != null ? o.period
        : o.subscription_period != null ? o.subscription_period
          : o.metadata && o.metadata.period;
      r[I.t('admin.outTradeNo')] = o.out_trade_no;
      r[I.t('admin.amount')] = '¥' + o.total_amount;
      r[I.t('admin.status')] = I.t('status.' + o.status);
      r[I.t('admin.created')] = when(o.created_at);
      r[I.t('admin.paidAt')] = when(o.paid_at);
      return r;
    }), I.t('admin.charges')) : text(I.t('admin.nothing')));
  }

  function openSub(id) {
    say(I.t('admin.loading'));
    return api('GET', '/v1/subscriptions/' + encodeURIComponent(id)).then(function (x) {
      say('');
      renderSub(x);
      show('sub-detail');
      $('sub-detail-heading').focus();
    }).catch(fail);
  }

  // Step 1: ask, naming the subscription; nothing is sent yet.
  $('sub-cancel').addEventListener('click', function () {
    if (!currentSub) return;
    $('sub-cancel-confirm-text').textContent = I.t('admin.subCancelAsk', {
      subject: currentSub.subject,
      amount: currentSub.amount,
      period: I.period(currentSub.period)
    });
    $('sub-cancel-confirm-box').hidden = false;
    $('sub-cancel-confirm').focus();
  });
  $('sub-cancel-keep').addEventListener('click', function () {
    hideSubCancel();
    $('sub-cancel').focus();
  });
  // Step 2: the confirmed cancellation is sent (the backend unsigns at Alipay).
  $('sub-cancel-confirm').addEventListener('click', function () {
    if (!currentSub) { hideSubCancel(); return; }
    var id = currentSub.id;
    $('sub-cancel-confirm').disabled = true;
    api('POST', '/v1/subscriptions/' + encodeURIComponent(id) + '/cancel', {})
      .then(function () {
        hideSubCancel();
        say(I.t('admin.subCanceled'));
        return api('GET', '/v1/subscriptions/' + encodeURIComponent(id)).then(renderSub);
      })
      .catch(fail)
      .then(function () { $('sub-cancel-confirm').disabled = false; });
  });

  $('sub-detail-back').addEventListener('click', function () {
    currentSub = null;
    show('subs');
    loadSubs(false).then(function () { $('subs-heading').focus(); });
  });
  $('subs-filter-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    loadSubs(false);
  });
  $('subs-status-filter').addEventListener('change', function () { loadSubs(false); });
  $('subs-more').addEventListener('click', function () { loadSubs(true); });
  $('tab-subscriptions').addEventListener('click', function () {
    currentSub = null;
    show('subs');
    loadSubs(false);
  });
  $('tab-orders').addEventListener('click', function () {
    current = null;
    show('list');
    loadList(false);
  });

  $('detail-back').addEventListener('click', function () {
    current = null;
    show('list');
    loadList(false).then(function () { $('orders-heading').focus(); });
  });

  $('key-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var k = $('api-key').value.trim();
    if (!k) {
      $('api-key').setAttribute('aria-invalid', 'true');
      $('api-key').focus();
      return;
    }
    $('api-key').removeAttribute('aria-invalid');
    try { sessionStorage.setItem(KEY, k); } catch (e) { memoryKey = k; }
    $('api-key').value = '';
    show('list');
    loadList(false);
  });

  $('filter-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    loadList(false);
  });
  $('status-filter').addEventListener('change', function () { loadList(false); });
  $('more').addEventListener('click', function () { loadList(true); });
  $('sign-out').addEventListener('click', function () { signOut(false); });
  $('orders-heading').tabIndex = -1;
  I.onChange(function () {
    if (current && !$('detail-view').hidden) renderDetail(current);
    else if (!$('list-view').hidden) loadList(false);
    else if (currentSub && !$('sub-detail-view').hidden) renderSub(currentSub);
    else if (!$('subs-view').hidden) loadSubs(false);
  });

  if (key()) {
    show('list');
    loadList(false);
  } else {
    show('key');
  }
})();

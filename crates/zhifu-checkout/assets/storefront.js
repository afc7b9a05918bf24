/* The storefront: lists the catalog and pays through zhifu.js. */
(function () {
  'use strict';
  var I = window.ZhifuI18n;
  var Z = window.Zhifu;
  var $ = function (id) { return document.getElementById(id); };
  var catalog = null;
  var busy = false;
  var current = null;
  /** Marks the return from Alipay's authorization page. */
  var AUTHORIZED = 'zhifu_authorized';

  function say(text, isError) {
    var m = $('message');
    m.textContent = text || '';
    m.classList.toggle('error', !!isError);
  }

  function errorText(e) {
    var key = 'err.' + (e && e.code);
    var known = I.t(key);
    return known !== key ? known : I.t('shop.error', { message: (e && e.message) || String(e) });
  }

  function setBusy(b) {
    busy = b;
    var buttons = document.querySelectorAll('#products button');
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = b;
  }

  /** Which buttons this device gets: the Alipay app pays in-app, a phone by wap, a PC by page or QR. */
  function offers() {
    var device = Z.detectChannel();
    var enabled = (catalog && catalog.channels) || [];
    // In the Alipay app without a way to know the buyer, wap pay works too.
    if (device === 'jsapi' && (catalog.jsapi_needs_buyer_id || enabled.indexOf('jsapi') < 0)) device = 'wap';
    var list = device === 'jsapi' ? [['jsapi', 'shop.payApp']]
      : device === 'wap' ? [['wap', 'shop.payPhone']]
        : [['page', 'shop.pay'], ['qr', 'shop.payQr']];
    return list.filter(function (o) { return enabled.indexOf(o[0]) >= 0; });
  }

  function name(p) { return I.lang === 'zh' ? p.name.zh : p.name.en; }

  function render() {
    var ul = $('products');
    ul.textContent = '';
    catalog.products.forEach(function (p, idx) {
      var li = document.createElement('li');
      li.className = 'product card';
      li.setAttribute('data-sku', p.sku);
      var h = document.createElement('h2');
      h.id = 'p-' + idx;
      h.textContent = name(p);
      li.appendChild(h);
      if (p.description) {
        var d = document.createElement('p');
        d.className = 'desc';
        d.textContent = I.lang === 'zh' ? p.description.zh : p.description.en;
        li.appendChild(d);
      }
      if (p.subscription) {
        renderSubscription(li, p, h);
        ul.appendChild(li);
        return;
      }
      var price = document.createElement('p');
      price.className = 'price';
      price.textContent = '¥' + p.price;
      price.setAttribute('aria-label', I.t('shop.unit') + ' ¥' + p.price);
      li.appendChild(price);
      var row = document.createElement('div');
      row.className = 'buy-row';
      var label = document.createElement('label');
      label.htmlFor = 'qty-' + p.sku;
      label.textContent = I.t('shop.quantity');
      var qty = document.createElement('input');
      qty.type = 'number';
      qty.id = 'qty-' + p.sku;
      qty.className = 'qty';
      qty.min = '1';
      qty.max = String(p.max_quantity);
      qty.step = '1';
      qty.value = '1';
      qty.inputMode = 'numeric';
      row.appendChild(label);
      row.appendChild(qty);
      li.appendChild(row);
      var actions = document.createElement('div');
      actions.className = 'actions';
      offers().forEach(function (o) {
        var b = document.createElement('button');
        b.type = 'button';
        b.className = o[0] === 'qr' ? 'secondary' : 'primary';
        b.setAttribute('data-channel', o[0]);
        b.textContent = I.t(o[1]);
        b.setAttribute('aria-describedby', h.id);
        b.addEventListener('click', function () { buy(p, qty, o[0]); });
        actions.appendChild(b);
      });
      li.appendChild(actions);
      ul.appendChild(li);
    });
  }

  /** How this device signs: a phone (and the Alipay app) on the mobile page, a PC on the page. */
  function signChannel() {
    var enabled = (catalog && catalog.channels) || [];
    var device = Z.detectChannel();
    var want = device === 'page' ? 'page' : 'wap';
    if (enabled.indexOf(want) >= 0) return want;
    return enabled.indexOf('page') >= 0 ? 'page' : enabled.indexOf('wap') >= 0 ? 'wap' : null;
  }

  /** A subscription product: the price per period, and one Subscribe button (no quantity). */
  function renderSubscription(li, p, h) {
    var per = { amount: p.price, period: I.period(p.subscription) };
    li.classList.add('subscription');
    var price = document.createElement('p');
    price.className = 'price';
    price.textContent = I.t('shop.perPeriod', per);
    li.appendChild(price);
    if (p.subscription.max_periods) {
      var n = document.createElement('p');
      n.className = 'desc';
      n.textContent = I.t('shop.periods', { n: p.subscription.max_periods });
      li.appendChild(n);
    }
    var actions = document.createElement('div');
    actions.className = 'actions';
    var channel = signChannel();
    if (channel) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'primary';
      b.setAttribute('data-action', 'subscribe');
      b.setAttribute('data-channel', channel);
      b.textContent = I.t('shop.subscribe', per);
      b.setAttribute('aria-describedby', h.id);
      b.addEventListener('click', function () { subscribe(p, channel); });
      actions.appendChild(b);
    }
    li.appendChild(actions);
  }

  function subscribe(p, channel) {
    if (busy) return;
    setBusy(true);
    say(I.t('shop.working'));
    Z.subscribe({
      sku: p.sku,
      channel: channel,
      onCreated: function () { say(I.t('shop.signing')); },
      onError: function (e) {
        setBusy(false);
        say(errorText(e), true);
      }
    }).catch(function () { /* reported through onError */ });
  }

  function show(view) {
    $('catalog').hidden = view !== 'catalog';
    $('qr-view').hidden = view !== 'qr';
    $('paid-view').hidden = view !== 'paid';
  }

  function buy(p, qtyInput, channel) {
    if (busy) return;
    var q = Number(qtyInput.value);
    if (!(q >= 1 && q <= p.max_quantity && Math.floor(q) === q)) {
      say(I.t('err.invalid_quantity'), true);
      qtyInput.focus();
      return;
    }
    setBusy(true);
    say(I.t('shop.working'));
    // jsapi: the server knows the buyer only after Alipay authorization;
    // without it, go to Alipay's authorization page and come back here to
    // resume this purchase (once: back from there, an error is shown).
    var resumed = new URLSearchParams(location.search).get(AUTHORIZED) === '1';
    Z.checkout({
      sku: p.sku,
      quantity: q,
      channel: channel,
      authorize: resumed ? false : 'redirect',
      authorizeReturn: location.pathname + '?buy=' + encodeURIComponent(p.sku) + '&quantity=' + q + '&' + AUTHORIZED + '=1',
      container: '#qr-panel',
      lang: I.lang,
      onCreated: function (c) {
        current = c;
        if (c.channel === 'page' || c.channel === 'wap') {
          say(I.t('shop.redirecting'));
        } else if (c.channel === 'qr') {
          say('');
          $('qr-subject').textContent = c.subject;
          show('qr');
          $('qr-heading').focus();
        }
      },
      onPaid: function (s) {
        setBusy(false);
        if (channel === 'qr') {
          // The QR panel itself flips to "Paid"; announce it too.
          say(I.t('shop.paidText', { subject: s.subject, amount: s.total_amount }));
          return;
        }
        say('');
        $('paid-text').textContent = I.t('shop.paidText', { subject: s.subject, amount: s.total_amount });
        show('paid');
        $('paid-heading').focus();
      },
      onCancel: function () {
        setBusy(false);
        say(I.t('shop.cancelled'), true);
      },
      onError: function (e) {
        setBusy(false);
        say(errorText(e), true);
      }
    }).catch(function () { /* reported through onError / onCancel */ });
  }

  function back() {
    if (current && current.watcher) current.watcher.stop();
    current = null;
    say('');
    $('qr-panel').textContent = '';
    setBusy(false);
    show('catalog');
    var first = document.querySelector('#products button');
    if (first) first.focus();
  }

  /** Back from Alipay's authorization page (`?buy=sku&quantity=n`): carry on with that purchase in the app. */
  function resume() {
    var q = new URLSearchParams(location.search);
    var sku = q.get('buy');
    if (!sku || q.get(AUTHORIZED) !== '1') return;
    var button = document.querySelector('.product[data-sku="' + CSS.escape(sku) + '"] button[data-channel="jsapi"]');
    var qty = $('qty-' + sku);
    if (!button || !qty) return;
    qty.value = q.get('quantity') || '1';
    var product = catalog.products.filter(function (p) { return p.sku === sku; })[0];
    buy(product, qty, 'jsapi');
    // A reload must not buy again.
    history.replaceState(null, '', location.pathname);
  }

  function load() {
    fetch('/checkout/catalog', { headers: { Accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (c) {
        catalog = c;
        $('catalog-loading').hidden = true;
        render();
        resume();
      })
      .catch(function (e) {
        $('catalog-loading').hidden = true;
        say(I.t('shop.error', { message: e.message }), true);
      });
  }

  $('qr-back').addEventListener('click', back);
  $('paid-back').addEventListener('click', back);
  I.onChange(function () { if (catalog) render(); });
  load();
})();

/*! zhifu.js — Alipay checkout for your page, served by your Zhifu server.
 *  No dependencies. Types: /zhifu.d.ts.
 *
 *  Zhifu.checkout({ endpoint, sku, quantity, channel, onPaid, onError })
 *  Zhifu.authorize({ endpoint, via: 'redirect' | 'bridge', returnTo })  (jsapi buyers)
 *  Zhifu.subscribe({ endpoint, sku, channel })   // a catalog subscription product
 *
 *  The page never holds a price or a payment secret: the server prices the
 *  order from its catalog, and "paid" is only ever reported after the
 *  server (which verifies Alipay's signed answers) says so. */
(function (root) {
  'use strict';

  var TEXT = {
    zh: {
      scan: '请打开支付宝扫一扫付款',
      qrAlt: '支付宝付款二维码，金额 ¥{amount}',
      waiting: '等待付款…',
      paid: '已支付',
      expired: '二维码已过期，请重新下单',
      closed: '订单已关闭',
      expiresIn: '{time} 后过期',
      amount: '应付金额',
      region: '支付宝扫码付款'
    },
    en: {
      scan: 'Open Alipay and scan to pay',
      qrAlt: 'Alipay payment QR code for ¥{amount}',
      waiting: 'Waiting for payment…',
      paid: 'Paid',
      expired: 'This QR code has expired; please start again',
      closed: 'The order was closed',
      expiresIn: 'Expires in {time}',
      amount: 'Amount due',
      region: 'Pay by scanning with Alipay'
    }
  };

  var CHANNELS = ['page', 'wap', 'qr', 'app', 'jsapi'];
  var FINAL = { paid: true, refunded: true, closed: true };

  /** An error with a stable `code` (the server's, or one of zhifu.js's own). */
  function ZhifuError(code, message, status) {
    this.name = 'ZhifuError';
    this.code = code;
    this.message = message || code;
    this.status = status || 0;
    this.stack = new Error(this.message).stack;
  }
  ZhifuError.prototype = Object.create(Error.prototype);
  ZhifuError.prototype.constructor = ZhifuError;

  function lang(opt) {
    if (opt === 'zh' || opt === 'en') return opt;
    var l = (root.document && root.document.documentElement.lang) || (root.navigator && root.navigator.language) || '';
    return /^zh/i.test(l) ? 'zh' : 'en';
  }

  function t(l, key, vars) {
    var s = (TEXT[l] || TEXT.en)[key] || key;
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] != null ? String(vars[k]) : ''; });
  }

  function base(endpoint) {
    return (endpoint || '').replace(/\/+$/, '');
  }

  function request(method, url, body, credentials) {
    // Only the jsapi buyer's authorization travels as a cookie (HttpOnly,
    // this site's own): other calls send none.
    var init = { method: method, headers: { Accept: 'application/json' }, credentials: credentials || 'omit', cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return root.fetch(url, init).then(function (r) {
      return r.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (!r.ok) {
          var err = json && json.error ? json.error : {};
          throw new ZhifuError(err.code || 'http_' + r.status, err.message || 'HTTP ' + r.status, r.status);
        }
        if (!json) throw new ZhifuError('bad_answer', 'the server answered something unreadable', r.status);
        return json;
      });
    }, function (e) {
      throw new ZhifuError('network', (e && e.message) || 'network error');
    });
  }

  /** Which channel suits this browser: the Alipay app → jsapi, a phone → wap, else page. */
  function detectChannel(ua) {
    ua = ua != null ? ua : (root.navigator && root.navigator.userAgent) || '';
    if (/AlipayClient/.test(ua)) return 'jsapi';
    if (/Android|iPhone|iPad|iPod|Mobile|HarmonyOS|OpenHarmony/i.test(ua)) return 'wap';
    return 'page';
  }

  function inAlipayApp(ua) {
    return detectChannel(ua) === 'jsapi';
  }

  /** The checkout id Alipay's redirect carried back (`?zhifu_checkout=`), if any. */
  function returnedCheckoutId(href) {
    try {
      var u = new URL(href || root.location.href);
      return u.searchParams.get('zhifu_checkout');
    } catch (e) {
      return null;
    }
  }

  function status(endpoint, checkoutId, opts) {
    var q = opts && opts.refresh ? '?refresh=true' : '';
    return request('GET', base(endpoint) + '/checkout/' + encodeURIComponent(checkoutId) + q);
  }

  /** Polls a checkout's status until it is final; never trusts anything but the server. */
  function watch(opts) {
    var stopped = false;
    var timer = null;
    var n = 0;
    var interval = opts.pollIntervalMs || 2000;
    var refreshEvery = opts.refreshEvery || 5;
    var last = null;
    function stop() {
      stopped = true;
      if (timer) root.clearTimeout(timer);
    }
    function tick() {
      if (stopped) return;
      // Ask Alipay (through the server's verified query) on the first poll
      // and every few polls after; plain reads in between are cheap.
      var refresh = (opts.refreshFirst !== false && n === 0) || (n > 0 && n % refreshEvery === 0) ||
        (last && last.expired);
      n += 1;
      status(opts.endpoint, opts.checkoutId, { refresh: refresh }).then(function (s) {
        if (stopped) return;
        last = s;
        if (opts.onStatus) opts.onStatus(s);
        if (s.paid) {
          stop();
          if (opts.onPaid) opts.onPaid(s);
          return;
        }
        if (FINAL[s.status]) {
          stop();
          if (opts.onClosed) opts.onClosed(s);
          return;
        }
        // Past the deadline and Alipay (asked on this very poll) still has
        // no payment: nothing more will happen, so stop polling.
        if (s.expired && refresh) {
          stop();
          if (opts.onExpired) opts.onExpired(s);
          return;
        }
        if (opts.maxPolls && n >= opts.maxPolls) {
          stop();
          return;
        }
        timer = root.setTimeout(tick, interval);
      }, function (e) {
        if (stopped) return;
        if (opts.onError) opts.onError(e);
        if (e.code === 'checkout_not_found') { stop(); return; }
        // Back off on errors (rate limits included) rather than hammering.
        timer = root.setTimeout(tick, Math.min(interval * 4, 15000));
      });
    }
    tick();
    return { stop: stop };
  }

  function el(tag, cls, text) {
    var e = root.document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function mmss(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(s / 60);
    s = s % 60;
    return (m < 10 ? '0' : '') + m + ':' + (s < 10 ? '0' : '') + s;
  }

  /** Draws the QR panel (amount, code, countdown, live status) into `container`. */
  function renderQr(container, checkout, opts) {
    opts = opts || {};
    var l = lang(opts.lang);
    var box = typeof container === 'string' ? root.document.querySelector(container) : container;
    if (!box) throw new ZhifuError('no_container', 'the QR code needs a container element');
    box.textContent = '';
    var panel = el('div', 'zhifu-qr');
    panel.setAttribute('role', 'region');
    panel.setAttribute('aria-label', t(l, 'region'));
    panel.setAttribute('data-state', 'pending');
    var amount = el('p', 'zhifu-qr-amount');
    amount.appendChild(el('span', 'zhifu-qr-amount-label', t(l, 'amount') + ' '));
    amount.appendChild(el('strong', 'zhifu-qr-amount-value', '¥' + checkout.total_amount));
    var img = el('img', 'zhifu-qr-img');
    img.alt = t(l, 'qrAlt', { amount: checkout.total_amount });
    img.width = 264;
    img.height = 264;
    img.style.maxWidth = '100%';
    img.style.height = 'auto';
    img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(checkout.qr_svg);
    var hint = el('p', 'zhifu-qr-hint', t(l, 'scan'));
    var countdown = el('p', 'zhifu-qr-countdown');
    var live = el('p', 'zhifu-qr-status', t(l, 'waiting'));
    live.setAttribute('role', 'status');
    live.setAttribute('aria-live', 'polite');
    panel.appendChild(amount);
    panel.appendChild(img);
    panel.appendChild(hint);
    panel.appendChild(countdown);
    panel.appendChild(live);
    box.appendChild(panel);

    // Count down on the server's clock, whatever the device's clock says.
    var skew = (checkout.now || Date.now()) - Date.now();
    var ticker = null;
    function tickCountdown() {
      if (!checkout.expires_at) return;
      var left = checkout.expires_at - (Date.now() + skew);
      countdown.textContent = t(l, 'expiresIn', { time: mmss(left) });
      if (left <= 0) {
        root.clearInterval(ticker);
        setState('expired');
      }
    }
    function setState(state) {
      if (panel.getAttribute('data-state') === 'paid') return;
      panel.setAttribute('data-state', state);
      if (state === 'paid') {
        live.textContent = '✓ ' + t(l, 'paid');
        img.hidden = true;
        hint.hidden = true;
        countdown.hidden = true;
        root.clearInterval(ticker);
      } else if (state === 'expired' || state === 'closed') {
        live.textContent = t(l, state);
        img.hidden = true;
        hint.hidden = true;
        root.clearInterval(ticker);
      }
    }
    tickCountdown();
    ticker = root.setInterval(tickCountdown, 1000);
    return { setState: setState, panel: panel };
  }

  function bridge(timeoutMs) {
    return new Promise(function (resolve, reject) {
      if (root.AlipayJSBridge) return resolve(root.AlipayJSBridge);
      var done = false;
      root.document.addEventListener('AlipayJSBridgeReady', function () {
        if (done) return;
        done = true;
        resolve(root.AlipayJSBridge);
      }, { once: true });
      root.setTimeout(function () {
        if (done) return;
        done = true;
        reject(new ZhifuError('bridge_unavailable', 'AlipayJSBridge is not available (open this page in the Alipay app)'));
      }, timeoutMs || 5000);
    });
  }

  function tradePay(tradeNo) {
    return bridge().then(function (b) {
      return new Promise(function (resolve) {
        b.call('tradePay', { tradeNO: tradeNo }, function (r) { resolve(r || {}); });
      });
    });
  }

  function getAuthCode() {
    return bridge().then(function (b) {
      return new Promise(function (resolve, reject) {
        b.call('getAuthCode', { scopeNicks: ['auth_base'] }, function (r) {
          var code = r && (r.authCode || r.auth_code);
          if (code) resolve(code);
          else reject(new ZhifuError('authorization_failed', (r && (r.errorMessage || r.error)) || 'getAuthCode gave no authCode'));
        });
      });
    });
  }

  /**
   * Alipay user authorization of the buyer, for jsapi checkouts (the
   * server then knows the buyer from a cookie; the page never does).
   * `via: 'redirect'` (default) leaves for Alipay's authorization page and
   * comes back to `returnTo` (a path on the server's site; default this
   * page), so the promise does not resolve; `via: 'bridge'` asks the
   * Alipay app's `getAuthCode` and resolves once the server has it.
   */
  function authorize(opts) {
    opts = opts || {};
    var endpoint = base(opts.endpoint);
    if (opts.via === 'bridge') {
      return getAuthCode().then(function (code) {
        return request('POST', endpoint + '/checkout/authorize/code', { auth_code: code }, 'same-origin');
      });
    }
    var back = opts.returnTo || (root.location.pathname + root.location.search);
    root.location.assign(endpoint + '/checkout/authorize?return=' + encodeURIComponent(back));
    return new Promise(function () { /* the page is leaving */ });
  }

  function submitForm(formHtml) {
    var holder = el('div');
    holder.hidden = true;
    holder.innerHTML = formHtml;
    root.document.body.appendChild(holder);
    var form = holder.querySelector('form');
    if (!form) throw new ZhifuError('bad_answer', 'no payment form in the answer');
    form.submit();
  }

  /**
   * Starts a checkout: creates the order on the server (priced from its
   * catalog) and does what the channel needs. Resolves with the checkout
   * (for page/wap, just before the browser leaves for Alipay).
   */
  function checkout(opts) {
    opts = opts || {};
    var onError = function (e) { if (opts.onError) opts.onError(e); };
    var channel = opts.channel && opts.channel !== 'auto' ? opts.channel : detectChannel();
    if (CHANNELS.indexOf(channel) < 0) {
      var bad = new ZhifuError('invalid_channel', 'unknown channel ' + channel);
      onError(bad);
      return Promise.reject(bad);
    }
    var body = { sku: opts.sku, quantity: opts.quantity == null ? 1 : opts.quantity, channel: channel };
    if (opts.returnUrl) body.return_url = opts.returnUrl;
    var endpoint = base(opts.endpoint);
    var watchOpts = function (c, extra) {
      var w = {
        endpoint: endpoint,
        checkoutId: c.checkout_id,
        pollIntervalMs: opts.pollIntervalMs,
        onStatus: opts.onStatus,
        onPaid: opts.onPaid,
        onClosed: opts.onClosed,
        onExpired: opts.onExpired,
        onError: onError,
        refreshFirst: false
      };
      for (var k in extra) w[k] = extra[k];
      return w;
    };
    // jsapi: the server takes the buyer only from its authorization cookie;
    // without one it answers `authorization_required`, and the buyer is
    // authorized first (once), then the checkout is made again.
    var create = function (retried) {
      var credentials = channel === 'jsapi' ? 'same-origin' : 'omit';
      return request('POST', endpoint + '/checkout', body, credentials).catch(function (e) {
        if (channel !== 'jsapi' || retried || !e || e.code !== 'authorization_required' || opts.authorize === false) throw e;
        return authorize({ endpoint: endpoint, via: opts.authorize, returnTo: opts.authorizeReturn })
          .then(function () { return create(true); });
      });
    };
    return create(false).then(function (c) {
      if (opts.onCreated) opts.onCreated(c);
      if (c.channel === 'page' || c.channel === 'wap') {
        if (c.url) root.location.assign(c.url);
        else submitForm(c.form_html);
        return c;
      }
      if (c.channel === 'qr') {
        var view = opts.container ? renderQr(opts.container, c, { lang: opts.lang }) : null;
        c.watcher = watch(watchOpts(c, {
          onStatus: function (s) {
            if (view && s.expired) view.setState('expired');
            if (opts.onStatus) opts.onStatus(s);
          },
          onPaid: function (s) {
            if (view) view.setState('paid');
            if (opts.onPaid) opts.onPaid(s);
          },
          onClosed: function (s) {
            if (view) view.setState('closed');
            if (opts.onClosed) opts.onClosed(s);
          },
          onExpired: function (s) {
            if (view) view.setState('expired');
            if (opts.onExpired) opts.onExpired(s);
          }
        }));
        return c;
      }
      if (c.channel === 'jsapi') {
        return tradePay(c.trade_no).then(function (r) {
          var code = String(r.resultCode || '');
          if (code === '9000' || code === '8000') {
            // The bridge's word is not proof: wait for the server to see it.
            // ~5 minutes: a payment still "processing" (8000) after that is
            // for the merchant's reconciliation, not for this page.
            c.watcher = watch(watchOpts(c, { refreshFirst: true, pollIntervalMs: opts.pollIntervalMs || 1500, maxPolls: 200 }));
            return c;
          }
          var err = code === '6001'
            ? new ZhifuError('cancelled', 'the buyer cancelled the payment')
            : new ZhifuError('payment_failed', 'Alipay answered resultCode ' + (code || 'none'));
          if (code === '6001' && opts.onCancel) opts.onCancel(c);
          else onError(err);
          throw err;
        });
      }
      // app: hand the order string to the native app SDK.
      return c;
    }).catch(function (e) {
      if (!(e instanceof ZhifuError)) e = new ZhifuError('unexpected', String(e && e.message || e));
      if (e.code !== 'cancelled' && e.code !== 'payment_failed') onError(e);
      throw e;
    });
  }

  // ---- subscriptions (Alipay recurring agreements) ------------------------

  var SIGN_CHANNELS = ['page', 'wap', 'app'];
  var SUBSCRIPTION_PARAM = 'zhifu_subscription';
  var SUBSCRIPTION_KEY = 'zhifu.subscription';

  function remember(id) {
    try { root.localStorage.setItem(SUBSCRIPTION_KEY, id); } catch (e) { /* storage may be disabled */ }
  }

  function remembered() {
    try { return root.localStorage.getItem(SUBSCRIPTION_KEY); } catch (e) { return null; }
  }

  /**
   * The subscription checkout id for the result page. The signing
   * return_url cannot carry it (the server learns the id only when it
   * creates the subscription, in the same call that sets the return_url),
   * so it says `?zhifu_subscription=returned` and the id is the one
   * subscribe() remembered in this browser; a `result_url` carries the id
   * itself.
   */
  function returnedSubscriptionId(href) {
    var v = null;
    try {
      v = new URL(href || root.location.href).searchParams.get(SUBSCRIPTION_PARAM);
    } catch (e) {
      return null;
    }
    if (v == null) return null;
    if (/^cs_/.test(v)) return v;
    return remembered();
  }

  function subscriptionStatus(endpoint, checkoutId, opts) {
    var q = opts && opts.refresh ? '?refresh=true' : '';
    return request('GET', base(endpoint) + '/checkout/subscriptions/' + encodeURIComponent(checkoutId) + q);
  }

  /** Polls a subscription until the buyer's signature is confirmed (or it ends). */
  function watchSubscription(opts) {
    var stopped = false;
    var timer = null;
    var n = 0;
    var interval = opts.pollIntervalMs || 2000;
    var refreshEvery = opts.refreshEvery || 3;
    function stop() {
      stopped = true;
      if (timer) root.clearTimeout(timer);
    }
    function tick() {
      if (stopped) return;
      // Ask Alipay (the server's verified agreement query) first and every
      // few polls; the signed notification usually gets there sooner.
      var refresh = (opts.refreshFirst !== false && n === 0) || (n > 0 && n % refreshEvery === 0);
      n += 1;
      subscriptionStatus(opts.endpoint, opts.checkoutId, { refresh: refresh }).then(function (s) {
        if (stopped) return;
        if (opts.onStatus) opts.onStatus(s);
        if (s.status !== 'pending_signature') {
          stop();
          if (s.active && opts.onActive) opts.onActive(s);
          return;
        }
        if (opts.maxPolls && n >= opts.maxPolls) { stop(); return; }
        timer = root.setTimeout(tick, interval);
      }, function (e) {
        if (stopped) return;
        if (opts.onError) opts.onError(e);
        if (e.code === 'checkout_not_found') { stop(); return; }
        timer = root.setTimeout(tick, Math.min(interval * 4, 15000));
      });
    }
    tick();
    return { stop: stop };
  }

  /**
   * Subscribes the buyer to a catalog subscription product: the server
   * creates the subscription (amount and period from its catalog) and this
   * sends the buyer to Alipay to sign (page/wap), or resolves with the
   * `alipays://` link for a native app (app).
   */
  function subscribe(opts) {
    opts = opts || {};
    var onError = function (e) { if (opts.onError) opts.onError(e); };
    var channel = opts.channel && opts.channel !== 'auto' ? opts.channel : detectChannel();
    // Inside the Alipay app the mobile signing page works as it does in a phone browser.
    if (channel === 'jsapi') channel = 'wap';
    if (SIGN_CHANNELS.indexOf(channel) < 0) {
      var bad = new ZhifuError('invalid_channel', 'unknown signing channel ' + channel);
      onError(bad);
      return Promise.reject(bad);
    }
    return request('POST', base(opts.endpoint) + '/checkout/subscriptions', { sku: opts.sku, channel: channel })
      .then(function (c) {
        if (opts.onCreated) opts.onCreated(c);
        if (c.sign && c.sign.app_link) return c;
        remember(c.checkout_id);
        if (opts.redirect === false) return c;
        if (c.sign && c.sign.url) root.location.assign(c.sign.url);
        else if (c.sign && c.sign.form_html) submitForm(c.sign.form_html);
        else throw new ZhifuError('bad_answer', 'no signing URL in the answer');
        return c;
      })
      .catch(function (e) {
        if (!(e instanceof ZhifuError)) e = new ZhifuError('unexpected', String(e && e.message || e));
        onError(e);
        throw e;
      });
  }

  root.Zhifu = {
    version: '1',
    checkout: checkout,
    authorize: authorize,
    subscribe: subscribe,
    subscriptionStatus: subscriptionStatus,
    watchSubscription: watchSubscription,
    returnedSubscriptionId: returnedSubscriptionId,
    watch: watch,
    status: status,
    renderQr: renderQr,
    detectChannel: detectChannel,
    inAlipayApp: inAlipayApp,
    returnedCheckoutId: returnedCheckoutId,
    ZhifuError: ZhifuError
  };
})(typeof window !== 'undefined' ? window : this);

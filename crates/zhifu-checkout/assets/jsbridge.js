/* Stand-in for the Alipay app's AlipayJSBridge — DEVELOPMENT ONLY.
 *
 * The real Alipay app injects `AlipayJSBridge` into pages it opens and
 * fires `AlipayJSBridgeReady`; `AlipayJSBridge.call('tradePay', {tradeNO},
 * cb)` shows Alipay's own cashier and answers `{resultCode}` (9000 paid,
 * 8000 processing, 6001 cancelled by the buyer, 4000 failed, 6002 network).
 *
 * `zhifu dev` serves this file at /sandbox/jsbridge.js and injects it into
 * the storefront for user agents containing "AlipayClient", so the jsapi
 * path can be exercised without the app: `tradePay` shows a small cashier
 * and, on "Pay", pays the trade through the sandbox's control API
 * (POST /sandbox/api/trades/pay) — the same as a buyer pressing Pay in the
 * sandbox cashier. `getAuthCode` (`{scopeNicks: ['auth_base'], appId?}` →
 * `{authCode, authSuccessScopes}`) gets a one-time code for the sandbox's
 * test buyer from POST /sandbox/api/oauth/auth-code, for the app `appId`
 * names or else the one registered app, as the real app hands one to a page
 * it opened. It never exists in production (`zhifu serve`). */
(function (root) {
  'use strict';
  if (root.AlipayJSBridge) return;
  var doc = root.document;

  function json(method, url, body) {
    return root.fetch(url, {
      method: method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error((j && j.error && j.error.message) || 'HTTP ' + r.status);
        return j;
      });
    });
  }

  function findTrade(tradeNo) {
    return json('GET', '/sandbox/api/trades').then(function (list) {
      for (var i = 0; i < list.length; i++) if (list[i].trade_no === tradeNo) return list[i];
      throw new Error('no sandbox trade ' + tradeNo);
    });
  }

  function button(text, id, primary) {
    var b = doc.createElement('button');
    b.type = 'button';
    b.id = id;
    b.textContent = text;
    b.className = primary ? 'primary' : 'secondary';
    b.style.margin = '0 6px';
    return b;
  }

  /** A minimal in-app cashier: resolves true (pay) or false (cancel). */
  function cashier(trade) {
    return new Promise(function (resolve) {
      var shade = doc.createElement('div');
      shade.style.cssText = 'position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:flex-end;justify-content:center;z-index:1000';
      var box = doc.createElement('div');
      box.setAttribute('role', 'dialog');
      box.setAttribute('aria-modal', 'true');
      box.setAttribute('aria-labelledby', 'zhifu-bridge-title');
      box.id = 'zhifu-bridge-cashier';
      box.style.cssText = 'background:#fff;color:#1f1f1f;width:100%;max-width:480px;border-radius:12px 12px 0 0;padding:20px;text-align:center;font:16px system-ui,sans-serif';
      var h = doc.createElement('h2');
      h.id = 'zhifu-bridge-title';
      h.textContent = '支付宝（沙箱替身）· Alipay (sandbox stand-in)';
      h.style.fontSize = '1.05rem';
      var amount = doc.createElement('p');
      amount.id = 'zhifu-bridge-amount';
      amount.textContent = '¥' + trade.total_amount;
      amount.style.cssText = 'font-size:2rem;font-weight:600;margin:8px 0';
      var subject = doc.createElement('p');
      subject.id = 'zhifu-bridge-subject';
      subject.textContent = trade.subject;
      var pay = button('确认付款 Pay', 'zhifu-bridge-pay', true);
      var cancel = button('取消 Cancel', 'zhifu-bridge-cancel', false);
      function done(ok) {
        doc.removeEventListener('keydown', onKey, true);
        shade.remove();
        resolve(ok);
      }
      function onKey(e) { if (e.key === 'Escape') done(false); }
      pay.addEventListener('click', function () { done(true); });
      cancel.addEventListener('click', function () { done(false); });
      doc.addEventListener('keydown', onKey, true);
      box.appendChild(h);
      box.appendChild(amount);
      box.appendChild(subject);
      box.appendChild(pay);
      box.appendChild(cancel);
      shade.appendChild(box);
      doc.body.appendChild(shade);
      pay.focus();
    });
  }

  function tradePay(params, cb) {
    var tradeNo = params && (params.tradeNO || params.tradeNo);
    if (!tradeNo) return cb({ resultCode: '4000', memo: 'tradeNO is required' });
    findTrade(tradeNo).then(function (trade) {
      return cashier(trade).then(function (ok) {
        if (!ok) return cb({ resultCode: '6001', memo: '用户中途取消' });
        return json('POST', '/sandbox/api/trades/pay', { out_trade_no: trade.out_trade_no, app_id: trade.app_id })
          .then(function (t) {
            cb({ resultCode: '9000', memo: '', result: JSON.stringify({ trade_no: t.trade_no, out_trade_no: t.out_trade_no }) });
          });
      });
    }).catch(function (e) {
      cb({ resultCode: '4000', memo: String(e && e.message || e) });
    });
  }

  function getAuthCode(params, cb) {
    var scopes = (params && (params.scopeNicks || params.scopes)) || ['auth_base'];
    var appId = params && params.appId
      ? Promise.resolve(params.appId)
      : json('GET', '/sandbox/api/apps').then(function (apps) {
        if (!apps.length) throw new Error('no sandbox app is registered');
        return apps[0].app_id;
      });
    appId.then(function (id) {
      return json('POST', '/sandbox/api/oauth/auth-code', { app_id: id, scopes: scopes });
    }).then(function (r) {
      cb({ authCode: r.authCode, authSuccessScopes: r.authSuccessScopes });
    }).catch(function (e) {
      cb({ error: 11, errorMessage: String(e && e.message || e) });
    });
  }

  root.AlipayJSBridge = {
    sandboxStandIn: true,
    call: function (name, params, cb) {
      cb = typeof cb === 'function' ? cb : function () {};
      if (name === 'tradePay') return tradePay(params, cb);
      if (name === 'getAuthCode') return getAuthCode(params, cb);
      cb({ error: 1, errorMessage: name + ' is not provided by the sandbox stand-in bridge' });
    }
  };
  var ready = function () { doc.dispatchEvent(new Event('AlipayJSBridgeReady')); };
  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', ready);
  else ready();
})(window);

/* The result page (return_url target). What it says comes only from the
 * server's status for the checkout id; Alipay's redirect parameters on this
 * URL (out_trade_no, trade_no, total_amount, sign, …) are ignored: anyone
 * can type them. */
(function () {
  'use strict';
  var I = window.ZhifuI18n;
  var Z = window.Zhifu;
  var $ = function (id) { return document.getElementById(id); };
  var id = Z.returnedCheckoutId();
  var state = 'checking';
  var last = null;
  var watcher = null;

  var TITLES = {
    checking: ['result.checking', 'result.checkingText'],
    paid: ['result.paid', 'result.paidText'],
    refunded: ['result.refunded', 'result.refundedText'],
    pending: ['result.pending', 'result.pendingText'],
    closed: ['result.closed', 'result.closedText'],
    unknown: ['result.unknown', 'result.unknownText'],
    error: ['result.error', 'result.errorText']
  };

  function draw() {
    var box = $('result');
    box.setAttribute('data-state', state);
    box.setAttribute('aria-busy', state === 'checking' ? 'true' : 'false');
    $('result-title').setAttribute('data-i18n', TITLES[state][0]);
    $('result-text').setAttribute('data-i18n', TITLES[state][1]);
    $('result-title').textContent = I.t(TITLES[state][0]);
    $('result-text').textContent = I.t(TITLES[state][1]);
    if (last) {
      $('result-order').hidden = false;
      $('result-subject').textContent = last.subject;
      $('result-amount').textContent = '¥' + last.total_amount;
      $('result-status').textContent = I.t('status.' + last.status);
    }
    $('result-again').hidden = !(state === 'pending' || state === 'error');
  }

  function onStatus(s) {
    last = s;
    state = s.status === 'paid' ? 'paid' : s.status;
    draw();
  }

  function start(refreshFirst) {
    if (watcher) watcher.stop();
    watcher = Z.watch({
      checkoutId: id,
      refreshFirst: refreshFirst,
      pollIntervalMs: 3000,
      refreshEvery: 3,
      // Keep listening for a late notification for a couple of minutes.
      maxPolls: 40,
      onStatus: onStatus,
      onError: function (e) {
        if (e.code === 'checkout_not_found') state = 'unknown';
        else if (state === 'checking') state = 'error';
        draw();
      }
    });
  }

  $('result-again').addEventListener('click', function () {
    state = 'checking';
    draw();
    start(true);
  });
  I.onChange(draw);

  if (!id) {
    state = 'unknown';
    draw();
  } else {
    start(true);
  }
})();

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
  // Back from signing a subscription's agreement (or its result_url).
  var subscriptionId = id ? null : Z.returnedSubscriptionId();
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

  // A subscription's states; what they say comes from the server only.
  var SUB_TITLES = {
    checking: ['result.subChecking', 'result.subCheckingText'],
    pending_signature: ['result.subPending', 'result.subPendingText'],
    active: ['result.subActive', 'result.subActiveText'],
    past_due: ['result.subPastDue', 'result.subPastDueText'],
    canceled: ['result.subCanceled', 'result.subCanceledText'],
    completed: ['result.subCompleted', 'result.subCompletedText'],
    unknown: ['result.unknown', 'result.unknownText'],
    error: ['result.error', 'result.errorText']
  };

  function drawSubscription() {
    var box = $('result');
    box.setAttribute('data-state', state);
    box.setAttribute('data-kind', 'subscription');
    box.setAttribute('aria-busy', state === 'checking' ? 'true' : 'false');
    var titles = SUB_TITLES[state] || SUB_TITLES.error;
    $('result-title').setAttribute('data-i18n', titles[0]);
    $('result-text').setAttribute('data-i18n', titles[1]);
    $('result-title').textContent = I.t(titles[0]);
    $('result-text').textContent = I.t(titles[1]);
    if (last) {
      $('result-order').hidden = false;
      $('result-subject-label').setAttribute('data-i18n', 'result.subscription');
      $('result-subject-label').textContent = I.t('result.subscription');
      $('result-subject').textContent = last.subject;
      $('result-amount').textContent = I.t('shop.perPeriod', { amount: last.amount, period: I.period(last.period) });
      $('result-status').textContent = I.t('substatus.' + last.status);
      var next = last.status === 'active' && last.next_charge_date;
      $('result-next-label').hidden = !next;
      $('result-next').hidden = !next;
      $('result-next').textContent = next || '';
    }
    $('result-again').hidden = !(state === 'pending_signature' || state === 'error');
  }

  function startSubscription(refreshFirst) {
    if (watcher) watcher.stop();
    watcher = Z.watchSubscription({
      checkoutId: subscriptionId,
      refreshFirst: refreshFirst,
      pollIntervalMs: 2000,
      refreshEvery: 3,
      maxPolls: 60,
      onStatus: function (s) {
        last = s;
        state = s.status;
        drawSubscription();
      },
      onError: function (e) {
        if (e.code === 'checkout_not_found') state = 'unknown';
        else if (state === 'checking') state = 'error';
        drawSubscription();
      }
    });
  }

  function draw() {
    if (subscriptionId) { drawSubscription(); return; }
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
    if (subscriptionId) startSubscription(true);
    else start(true);
  });
  I.onChange(draw);

  if (subscriptionId) {
    draw();
    startSubscription(true);
  } else if (!id) {
    state = 'unknown';
    draw();
  } else {
    start(true);
  }
})();

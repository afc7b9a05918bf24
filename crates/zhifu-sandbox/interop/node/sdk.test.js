// The official Node SDK (alipay-sdk from npm, unchanged) against the zhifu
// sandbox, with response-signature verification on (alipayPublicKey = the
// sandbox key, validateSign: true):
// precreate → buyer pays (control API) → query TRADE_SUCCESS → partial refund
// → refund query → full refund → TRADE_CLOSED; close and cancel on other
// trades; checkNotifySign accepts every notification the sandbox delivers.
// Run: ZHIFU_BIN=path/to/zhifu node --test
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { ZHIFU, startSandbox, api, newApp, startReceiver, formToObject } = require('./harness');

const run = promisify(execFile);
const V = { validateSign: true };

test('official alipay-sdk: full journey with verified responses and notifications', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.stop());
  const rx = await startReceiver();
  t.after(() => rx.close());
  const { sdk, appId, sellerId } = await newApp(sb);
  const notifyUrl = `${rx.url}/notify`;
  const exec = (method, bizContent, extra = {}) => sdk.exec(method, { bizContent, ...extra }, V);

  const out = `NODE${Date.now()}`;
  const pre = await exec('alipay.trade.precreate',
    { out_trade_no: out, total_amount: '88.88', subject: '测试咖啡 coffee' }, { notify_url: notifyUrl });
  assert.equal(pre.code, '10000');
  assert.equal(pre.out_trade_no, out);
  assert.match(pre.qr_code, /^http:\/\/127\.0\.0\.1:\d+\/sandbox\/scan\//);

  // The trade does not exist until the buyer scans (docs/protocol.md §5.3); the failure is signed and verifies too.
  const before = await exec('alipay.trade.query', { out_trade_no: out });
  assert.equal(before.sub_code, 'ACQ.TRADE_NOT_EXIST');

  const paid = await api(sb.base, 'POST', '/sandbox/api/trades/pay', { out_trade_no: out });
  assert.equal(paid.trade_status, 'TRADE_SUCCESS');

  const q = await exec('alipay.trade.query', { out_trade_no: out });
  assert.equal(q.code, '10000');
  assert.equal(q.trade_status, 'TRADE_SUCCESS');
  assert.equal(q.total_amount, '88.88');
  assert.equal(q.buyer_pay_amount, '88.88');
  assert.equal(q.receipt_amount, '88.88');
  assert.equal(q.trade_no, paid.trade_no);

  const r1 = await exec('alipay.trade.refund', { out_trade_no: out, refund_amount: '10.00', out_request_no: 'R1' });
  assert.equal(r1.code, '10000');
  assert.equal(r1.fund_change, 'Y');
  assert.equal(r1.refund_fee, '10.00');

  const rq = await exec('alipay.trade.fastpay.refund.query', { out_trade_no: out, out_request_no: 'R1' });
  assert.equal(rq.refund_status, 'REFUND_SUCCESS');
  assert.equal(rq.refund_amount, '10.00');
  assert.equal(rq.total_amount, '88.88');

  const r2 = await exec('alipay.trade.refund', { out_trade_no: out, refund_amount: '78.88', out_request_no: 'R2' });
  assert.equal(r2.refund_fee, '88.88');
  const closed = await exec('alipay.trade.query', { out_trade_no: out });
  assert.equal(closed.trade_status, 'TRADE_CLOSED');

  // Close: a JSAPI trade exists at once and can be closed while unpaid.
  const c = `NODEC${Date.now()}`;
  const created = await exec('alipay.trade.create',
    { out_trade_no: c, total_amount: '1.00', subject: 'close me', buyer_id: '2088102146225135' });
  assert.equal(created.code, '10000');
  const cl = await exec('alipay.trade.close', { out_trade_no: c });
  assert.equal(cl.code, '10000');
  assert.equal(cl.trade_no, created.trade_no);
  assert.equal((await exec('alipay.trade.query', { out_trade_no: c })).trade_status, 'TRADE_CLOSED');

  // Cancel: a paid face-to-face trade is refunded, an unpaid one closed.
  const k = `NODEK${Date.now()}`;
  await exec('alipay.trade.precreate', { out_trade_no: k, total_amount: '2.00', subject: 'cancel me' });
  await api(sb.base, 'POST', '/sandbox/api/trades/pay', { out_trade_no: k, app_id: appId });
  const ck = await exec('alipay.trade.cancel', { out_trade_no: k });
  assert.equal(ck.action, 'refund');
  assert.equal((await exec('alipay.trade.query', { out_trade_no: k })).trade_status, 'TRADE_CLOSED');
  const u = `NODEU${Date.now()}`;
  await exec('alipay.trade.create',
    { out_trade_no: u, total_amount: '2.00', subject: 'cancel unpaid', buyer_id: '2088102146225135' });
  assert.equal((await exec('alipay.trade.cancel', { out_trade_no: u })).action, 'close');

  // Business errors arrive signed in the method's node and verify.
  const dup = await exec('alipay.trade.refund', { out_trade_no: out, refund_amount: '1.00', out_request_no: 'R3' });
  assert.equal(dup.sub_code, 'ACQ.TRADE_STATUS_ERROR');

  // Notifications: paid, then the partial refund (face-to-face full refunds do not notify, docs/protocol.md §6.5).
  await rx.waitFor(2);
  // More kinds via the CLI (`zhifu sandbox trigger`), signed by the same sandbox key.
  for (const kind of ['paid', 'partial-refund', 'full-refund', 'closed', 'duplicate']) {
    await run(ZHIFU, ['sandbox', 'trigger', kind, '--url', `${rx.url}/trigger`, '--sandbox', sb.base,
      '--app-id', appId, '--amount', '20.00']);
  }
  await run(ZHIFU, ['sandbox', 'trigger', 'tampered', '--url', `${rx.url}/tampered`, '--sandbox', sb.base]);
  const genuine = rx.hits.filter((h) => h.path !== '/tampered');
  assert.equal(genuine.length, 2 + 6);
  for (const h of genuine) {
    assert.match(h.contentType, /^application\/x-www-form-urlencoded/);
    const n = formToObject(h.body);
    assert.equal(sdk.checkNotifySign(n), true, h.body);
    assert.equal(sdk.checkNotifySignV2(n), true, h.body);
    assert.equal(n.app_id, appId);
    for (const [key, value] of Object.entries(n)) assert.notEqual(value, '', `empty field ${key}`);
  }
  const journey = genuine.filter((h) => h.path === '/notify').map((h) => formToObject(h.body));
  assert.equal(journey[0].trade_status, 'TRADE_SUCCESS');
  assert.equal(journey[0].total_amount, '88.88');
  assert.equal(journey[0].seller_id, sellerId);
  assert.equal(journey[1].refund_fee, '10.00');
  assert.equal(journey[1].out_biz_no, 'R1');
  const tampered = rx.hits.filter((h) => h.path === '/tampered');
  assert.equal(tampered.length, 1);
  assert.equal(sdk.checkNotifySign(formToObject(tampered[0].body)), false);

  // The sandbox's own record matches what arrived.
  const deliveries = await api(sb.base, 'GET', `/sandbox/api/notifications?out_trade_no=${out}`);
  assert.equal(deliveries.length, 2);
  for (const d of deliveries) {
    assert.equal(d.attempts.at(-1).response_body, 'success');
    assert.ok(journey.some((n) => new URLSearchParams(d.body).get('notify_id') === n.notify_id));
  }

  // `zhifu sandbox resend` delivers the recorded body once more.
  const hitsBefore = rx.hits.length;
  await run(ZHIFU, ['sandbox', 'resend', String(deliveries[0].id), '--sandbox', sb.base]);
  assert.equal(rx.hits.length, hitsBefore + 1);
  assert.equal(rx.hits.at(-1).body, deliveries[0].body);
});

test('official alipay-sdk: gateway refusals look like the real ones', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.stop());
  const { sdk } = await newApp(sb);
  const other = await newApp(sb);
  // A request signed with another app's key: isv.invalid-signature, signed answer.
  const wrong = new (require('alipay-sdk').AlipaySdk)({
    appId: sdk.config.appId,
    privateKey: other.privateKey,
    keyType: 'PKCS8',
    alipayPublicKey: sb.alipayPublicKey,
    gateway: sb.gateway,
    camelcase: false,
  });
  const r = await wrong.exec('alipay.trade.query', { bizContent: { out_trade_no: 'X' } }, V);
  assert.equal(r.code, '40002');
  assert.equal(r.sub_code, 'isv.invalid-signature');
  assert.match(r.sub_msg, /验签字符串为：app_id=/);
});

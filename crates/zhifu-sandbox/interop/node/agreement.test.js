// The official Node SDK (alipay-sdk from npm, unchanged) signs a recurring
// agreement (周期扣款) and charges it against the zhifu sandbox, every answer
// verified by the SDK (validateSign: true) and every notification by its
// checkNotifySign / checkNotifySignV2:
// pageExecute(alipay.user.agreement.page.sign, GET) → the browser opens the
// URL → the sandbox signing page → agree → dut_user_sign → query NORMAL →
// deduction (alipay.trade.pay GENERAL_WITHHOLDING) → TRADE_SUCCESS and its
// notification → the same out_trade_no again charges nothing → short balance
// refused, then the same out_trade_no retried → merchant unsign →
// dut_user_unsign → query UNSIGN → deductions refused.
// Run: ZHIFU_BIN=path/to/zhifu node --test agreement.test.js
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startSandbox, api, newApp, startReceiver, formToObject } = require('./harness');

const V = { validateSign: true };
const PPC = 'CYCLE_PAY_AUTH_P';
const SCENE = 'INDUSTRY|DIGITAL_MEDIA';

/** Resolves with the `n`-th (1-based) notification that arrived on `path`. */
async function nth(rx, path, n, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const hits = rx.hits.filter((h) => h.path === path);
    if (hits.length >= n) return hits[n - 1];
    if (Date.now() > deadline) throw new Error(`only ${hits.length} of ${n} notifications on ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function assertVerifies(sdk, hit) {
  assert.match(hit.contentType, /^application\/x-www-form-urlencoded/);
  const n = formToObject(hit.body);
  assert.equal(sdk.checkNotifySign(n), true, hit.body);
  assert.equal(sdk.checkNotifySignV2(n), true, hit.body);
  return n;
}

async function agreementRow(sb, agreementNo) {
  const rows = await api(sb.base, 'GET', '/sandbox/api/agreements');
  const row = rows.find((a) => a.agreement_no === agreementNo);
  assert.ok(row, `agreement ${agreementNo} is not listed: ${JSON.stringify(rows)}`);
  return row;
}

test('official alipay-sdk: sign an agreement on the signing page, deduct, unsign', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.stop());
  const rx = await startReceiver();
  t.after(() => rx.close());
  const { sdk, appId, sellerId } = await newApp(sb);
  const exec = (method, bizContent, extra = {}) => sdk.exec(method, { bizContent, ...extra }, V);
  const external = `NODESUB${Date.now()}`;

  // The merchant's server builds the signing URL; nothing is sent yet.
  const signUrl = sdk.pageExecute('alipay.user.agreement.page.sign', 'GET', {
    bizContent: {
      personal_product_code: PPC,
      sign_scene: SCENE,
      external_agreement_no: external,
      access_params: { channel: 'QRCODE' },
      period_rule_params: {
        period_type: 'MONTH', period: 1, execute_time: '2030-01-15', single_amount: '30.00',
      },
    },
    notifyUrl: `${rx.url}/agreement`,
  });
  assert.ok(signUrl.startsWith(sb.gateway), signUrl);

  // The buyer's browser opens it and lands on the signing page.
  const opened = await fetch(signUrl);
  assert.equal(opened.status, 200);
  assert.match(opened.url, /\/sandbox\/sign\/[^/]+$/);
  const page = await opened.text();
  assert.ok(page.includes(external), page);
  assert.ok(page.includes('data-status="TEMP"'), page);
  const agree = page.match(/<form method="post" action="([^"]+\/agree)">/);
  assert.ok(agree, page);

  // While the page is open the agreement is TEMP for the merchant.
  const temp = await exec('alipay.user.agreement.query',
    { personal_product_code: PPC, sign_scene: SCENE, external_agreement_no: external });
  assert.equal(temp.code, '10000');
  assert.equal(temp.status, 'TEMP');

  // The buyer agrees, posting the page's form as a browser would.
  const agreed = await fetch(new URL(agree[1], opened.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: '',
  });
  assert.equal(agreed.status, 200);
  assert.ok((await agreed.text()).includes('data-status="NORMAL"'));

  // The signed dut_user_sign notification.
  const signHit = await nth(rx, '/agreement', 1);
  const signed = assertVerifies(sdk, signHit);
  assert.equal(signed.notify_type, 'dut_user_sign');
  assert.equal(signed.status, 'NORMAL');
  assert.equal(signed.app_id, appId);
  assert.equal(signed.external_agreement_no, external);
  assert.equal(signed.personal_product_code, PPC);
  assert.equal(signed.sign_scene, SCENE);
  assert.equal(signed.agreement_no, temp.agreement_no);
  assert.match(signed.alipay_user_id, /^2088\d{12}$/);
  for (const [key, value] of Object.entries(signed)) assert.notEqual(value, '', `empty field ${key}`);
  const agreementNo = signed.agreement_no;

  // Tampered or re-pointed copies do not verify.
  const tampered = { ...signed, status: 'UNSIGN' };
  assert.equal(sdk.checkNotifySign(tampered), false);
  assert.equal(sdk.checkNotifySignV2(tampered), false);
  const repointed = { ...signed, agreement_no: '20300101099999999999' };
  assert.equal(sdk.checkNotifySign(repointed), false);
  const foreignApp = formToObject(signHit.body.replace(`app_id=${appId}`, 'app_id=2021000000000000'));
  assert.equal(sdk.checkNotifySign(foreignApp), false);

  const q = await exec('alipay.user.agreement.query', { agreement_no: agreementNo });
  assert.equal(q.code, '10000');
  assert.equal(q.status, 'NORMAL');
  assert.equal(q.agreement_no, agreementNo);
  assert.equal(q.external_agreement_no, external);
  assert.equal(q.principal_id, signed.alipay_user_id);
  assert.equal(q.single_quota, '30.00');

  // The first period's deduction.
  const deduct = (out, amount) => exec('alipay.trade.pay', {
    out_trade_no: out,
    total_amount: amount,
    subject: '月度会员 membership',
    product_code: 'GENERAL_WITHHOLDING',
    agreement_params: { agreement_no: agreementNo },
  }, { notify_url: `${rx.url}/trade` });
  const period1 = `${external}P1`;
  const paid = await deduct(period1, '30.00');
  assert.equal(paid.code, '10000');
  assert.equal(paid.out_trade_no, period1);
  assert.equal(paid.total_amount, '30.00');
  assert.equal(paid.buyer_user_id, signed.alipay_user_id);
  const tq = await exec('alipay.trade.query', { out_trade_no: period1 });
  assert.equal(tq.trade_status, 'TRADE_SUCCESS');
  assert.equal(tq.trade_no, paid.trade_no);
  const tradeNote = assertVerifies(sdk, await nth(rx, '/trade', 1));
  assert.equal(tradeNote.trade_status, 'TRADE_SUCCESS');
  assert.equal(tradeNote.out_trade_no, period1);
  assert.equal(tradeNote.trade_no, paid.trade_no);
  assert.equal(tradeNote.total_amount, '30.00');
  assert.equal(tradeNote.seller_id, sellerId);
  assert.equal(tradeNote.buyer_id, signed.alipay_user_id);

  // A rerun of the same period (same out_trade_no): refused, nothing charged twice.
  const rerun = await deduct(period1, '30.00');
  assert.equal(rerun.code, '40004');
  assert.equal(rerun.sub_code, 'ACQ.TRADE_HAS_SUCCESS');
  let row = await agreementRow(sb, agreementNo);
  assert.equal(row.deductions, 1);
  assert.equal(row.deducted_amount, '30.00');
  const deliveries = await api(sb.base, 'GET', `/sandbox/api/notifications?out_trade_no=${period1}`);
  assert.equal(deliveries.length, 1);

  // The buyer's balance runs short: refused, no trade, so the period can be retried.
  await api(sb.base, 'PUT', '/sandbox/api/withholding-balance', { balance: '10.00' });
  const period2 = `${external}P2`;
  const short = await deduct(period2, '30.00');
  assert.equal(short.code, '40004');
  assert.equal(short.sub_code, 'ACQ.BUYER_BALANCE_NOT_ENOUGH');
  assert.equal((await exec('alipay.trade.query', { out_trade_no: period2 })).sub_code, 'ACQ.TRADE_NOT_EXIST');
  await api(sb.base, 'PUT', '/sandbox/api/withholding-balance', { balance: '30.00' });
  const retried = await deduct(period2, '30.00');
  assert.equal(retried.code, '10000');
  await api(sb.base, 'PUT', '/sandbox/api/withholding-balance', { balance: null });
  row = await agreementRow(sb, agreementNo);
  assert.equal(row.deductions, 2);
  assert.equal(row.deducted_amount, '60.00');

  // The merchant ends the agreement.
  const unsigned = await exec('alipay.user.agreement.unsign', { agreement_no: agreementNo });
  assert.equal(unsigned.code, '10000');
  const ended = assertVerifies(sdk, await nth(rx, '/agreement', 2));
  assert.equal(ended.notify_type, 'dut_user_unsign');
  assert.equal(ended.status, 'UNSIGN');
  assert.equal(ended.agreement_no, agreementNo);
  assert.ok(ended.unsign_time);
  const after = await exec('alipay.user.agreement.query', { agreement_no: agreementNo });
  assert.equal(after.code, '10000');
  assert.equal(after.status, 'UNSIGN');

  const refused = await deduct(`${external}P3`, '30.00');
  assert.equal(refused.code, '40004');
  assert.equal(refused.sub_code, 'ACQ.AGREEMENT_STATUS_NOT_NORMAL');
  // A paid period still answers as paid, whatever became of the agreement.
  assert.equal((await deduct(period1, '30.00')).sub_code, 'ACQ.TRADE_HAS_SUCCESS');
  const again = await exec('alipay.user.agreement.unsign', { agreement_no: agreementNo });
  assert.equal(again.sub_code, 'USER_AGREEMENT_NOT_EXIST');
  row = await agreementRow(sb, agreementNo);
  assert.equal(row.status, 'UNSIGN');
  assert.equal(row.deductions, 2);
});

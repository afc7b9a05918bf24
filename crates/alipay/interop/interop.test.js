// Interop between the official Node SDK (alipay-sdk from npm, unchanged) and
// our `alipay` crate as exposed by the `zhifu` CLI:
//  1. for the same parameters and key, `zhifu sign` produces byte-identical
//     signatures to the SDK (RSA PKCS#1 v1.5 is deterministic);
//  2. the SDK accepts signatures made by `zhifu sign`;
//  3. `zhifu verify-notify` agrees with the SDK's checkNotifySignV2 on valid
//     and tampered notifications.
// Run: ZHIFU_BIN=path/to/zhifu node --test interop.test.js
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { AlipaySdk } = require('alipay-sdk');

const REPO = path.resolve(__dirname, '../../..');
const ZHIFU = process.env.ZHIFU_BIN || path.join(REPO, 'target/debug/zhifu');
const V = path.join(__dirname, '../tests/vectors/upstream');
const read = (p) => fs.readFileSync(path.join(V, p), 'utf8');

function zhifu(args, input) {
  const r = spawnSync(ZHIFU, args, { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zhifu-interop-'));
const keyFile = (name, text) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text);
  return p;
};

// The official SDK's own test key, in PKCS#1 and PKCS#8, and a fresh PKCS#8 key.
const pkcs1Pem = read('nodejs-sdk/keys/app-private-key.pem');
const pkcs8Pem = read('nodejs-sdk/keys/app-private-key-pkcs8.pem');
const fresh = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const freshPkcs8 = fresh.privateKey.export({ type: 'pkcs8', format: 'pem' });
const KEYS = [
  { name: 'sdk-pkcs1', pem: pkcs1Pem, keyType: 'PKCS1', file: keyFile('k1.pem', pkcs1Pem) },
  { name: 'sdk-pkcs8', pem: pkcs8Pem, keyType: 'PKCS8', file: keyFile('k8.pem', pkcs8Pem) },
  // Bare base64 as the Alipay key tool writes it, for our side only.
  { name: 'fresh-pkcs8-bare', pem: freshPkcs8, keyType: 'PKCS8',
    file: keyFile('kf.txt', freshPkcs8.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')) },
];

const BIZ = [
  { outTradeNo: 'ORDER_0001', totalAmount: '88.88', subject: 'A mug', productCode: 'FAST_INSTANT_TRADE_PAY' },
  { outTradeNo: 'ORDER-0002', totalAmount: '0.01', subject: '测试订单 语雀空间 500人规模', body: '中文 + plus % percent' },
  { outTradeNo: 'O3', totalAmount: '100000000.00', subject: 'quotes " and \' and <tags> and emoji 🍵', passbackParams: 'a%3Db%26c%3Dd' },
  { outTradeNo: 'O4', totalAmount: '1.50', subject: 'spaces   and\ttab', goodsDetail: [{ goodsId: 'g1', price: '1.50', quantity: 1 }] },
];

test('zhifu sign is byte-identical to the official SDK', () => {
  let checked = 0;
  for (const key of KEYS) {
    for (const signType of ['RSA2', 'RSA']) {
      const sdk = new AlipaySdk({ appId: '2021000122671080', privateKey: key.pem, keyType: key.keyType, signType });
      for (const bizContent of BIZ) {
        for (const extra of [{}, { notifyUrl: 'https://shop.example.com/alipay/notify?x=1&y=2', returnUrl: 'https://shop.example.com/r' }]) {
          const orderString = sdk.sdkExecute('alipay.trade.app.pay', { bizContent, ...extra });
          const params = new URLSearchParams(orderString);
          const sdkSign = params.get('sign');
          params.delete('sign');
          const ours = zhifu(['sign', '--private-key', key.file, '--sign-type', signType], params.toString());
          assert.equal(ours.code, 0, ours.err);
          assert.equal(ours.out, sdkSign, `${key.name} ${signType} ${bizContent.outTradeNo}`);
          checked++;
        }
      }
    }
  }
  assert.equal(checked, KEYS.length * 2 * BIZ.length * 2);
});

test('the official SDK accepts zhifu signatures', () => {
  const pub = crypto.createPublicKey(pkcs8Pem).export({ type: 'spki', format: 'pem' });
  for (const signType of ['RSA2', 'RSA']) {
    const sdk = new AlipaySdk({ appId: '2021000122671080', privateKey: pkcs8Pem, keyType: 'PKCS8', alipayPublicKey: pub, signType });
    for (const [i, biz] of BIZ.entries()) {
      const params = new URLSearchParams({
        app_id: '2021000122671080', method: 'alipay.trade.query', charset: 'utf-8', sign_type: signType,
        timestamp: '2024-01-02 03:04:05', version: '1.0', biz_content: JSON.stringify(biz),
      });
      const sig = zhifu(['sign', '--private-key', KEYS[1].file], params.toString());
      const content = zhifu(['sign', '--private-key', KEYS[1].file, '--content'], params.toString());
      assert.equal(sig.code, 0, sig.err);
      assert.equal(sdk.rsaCheck(content.out, sig.out, signType), true, `case ${i}`);
      const signed = Object.fromEntries(params);
      signed.sign = sig.out;
      assert.equal(sdk.checkNotifySignV2(signed), true);
      // And it is a real check: a changed value fails.
      signed.timestamp = '2024-01-02 03:04:06';
      assert.equal(sdk.checkNotifySignV2(signed), false);
    }
  }
});

// Notifications: real ones from the vectors, plus ones signed here with the
// fzlee "Alipay" test key over the documented rule, each also tampered.
function signNotify(fields, privateKeyPem) {
  const content = Object.keys(fields).filter((k) => k !== 'sign' && k !== 'sign_type').sort()
    .map((k) => `${k}=${fields[k]}`).join('&');
  const sign = crypto.createSign('RSA-SHA256').update(content, 'utf8').sign(privateKeyPem, 'base64');
  return { ...fields, sign_type: 'RSA2', sign };
}

test('zhifu verify-notify agrees with checkNotifySignV2', () => {
  const aliPriv = read('fzlee-alipay/keys/ali_private_key.pem');
  const aliPub = read('fzlee-alipay/keys/ali_public_key.pem');
  const certPub = new crypto.X509Certificate(read('yansongda-pay/certs/alipayPublicCert.crt')).publicKey
    .export({ type: 'spki', format: 'pem' });
  const inlineKey = read('nodejs-sdk/keys/alipay-notify-public-key-trade-notify-inline.txt').trim();
  const inlinePem = `-----BEGIN PUBLIC KEY-----\n${inlineKey.match(/.{1,64}/g).join('\n')}\n-----END PUBLIC KEY-----\n`;
  const cases = [];
  const real = (file, pem) => cases.push({ name: file, fields: JSON.parse(read(file)).params_after_form_decoding, pem });
  real('nodejs-sdk/cases/notify_trade_status_sync.json', inlinePem);
  real('yansongda-pay/cases/notify_with_plus_in_subject.json', certPub);
  real('nodejs-sdk/cases/notify_servicemarket_keeps_sign_type.json', read('nodejs-sdk/keys/alipay-notify-sign-public-key-v2.pem'));
  const base = JSON.parse(read('derived/notify_sign_emulator.json')).signed_fields;
  const subjects = ['plain', 'with + plus', 'percent %25 and %', 'amp & eq = both', '中文 ✓', 'trailing space '];
  for (const [i, subject] of subjects.entries()) {
    cases.push({ name: `generated ${i}`, fields: signNotify({ ...base, subject, out_trade_no: `GEN_${i}` }, aliPriv), pem: aliPub });
  }
  const tampers = [
    ['total_amount', (f) => ({ ...f, total_amount: f.total_amount === '0.01' ? '0.02' : '0.01' })],
    ['subject', (f) => ({ ...f, subject: `${f.subject || ''}x` })],
    ['sign char', (f) => ({ ...f, sign: (f.sign[0] === 'A' ? 'B' : 'A') + f.sign.slice(1) })],
    ['no sign', (f) => { const g = { ...f }; delete g.sign; return g; }],
    ['extra field', (f) => ({ ...f, extra_field: 'x' })],
  ];
  let agreed = 0;
  for (const c of cases) {
    const pubFile = keyFile(`pub-${agreed}.pem`, c.pem);
    const sdk = new AlipaySdk({ appId: 'x', privateKey: pkcs8Pem, keyType: 'PKCS8', alipayPublicKey: c.pem });
    const variants = [['valid', c.fields, true], ...tampers.map(([n, f]) => [n, f(c.fields), false])];
    for (const [name, fields, expected] of variants) {
      const body = new URLSearchParams(fields).toString();
      const sdkVerdict = sdk.checkNotifySignV2(Object.fromEntries(new URLSearchParams(body)));
      const ours = zhifu(['verify-notify', '--alipay-public-key', pubFile], body);
      assert.ok(ours.code === 0 || ours.code === 1, `${c.name}/${name}: exit ${ours.code} ${ours.err}`);
      assert.equal(sdkVerdict, expected, `SDK on ${c.name}/${name}`);
      assert.equal(ours.code === 0, expected, `zhifu on ${c.name}/${name}: ${ours.err}`);
      if (expected) {
        assert.deepEqual(JSON.parse(ours.out), Object.fromEntries(new URLSearchParams(body)));
      }
      agreed++;
    }
  }
  assert.equal(agreed, cases.length * (tampers.length + 1));
});

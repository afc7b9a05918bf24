// The official Node SDK (alipay-sdk from npm, unchanged) in public-key
// certificate mode (公钥证书模式) against `zhifu sandbox --cert-mode`.
// The sandbox issues the app certificate from its own root (`--app-public-key`
// with `--cert-dir` writes the three files, or `POST /sandbox/api/certs/app`);
// the SDK is given them as `appCertPath`/`alipayPublicCertPath`/
// `alipayRootCertPath` (or the `…Content` variants), computes `app_cert_sn`
// and `alipay_root_cert_sn` itself, and verifies every answer with the key
// of the Alipay certificate (validateSign: true).
// Run: ZHIFU_BIN=path/to/zhifu node --test cert_mode.test.js
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { AlipaySdk } = require('alipay-sdk');
const { startSandbox, api, startReceiver, formToObject } = require('./harness');

const V = { validateSign: true };
const UPSTREAM = path.resolve(__dirname, '../../../alipay/tests/vectors/upstream/nodejs-sdk/certs');

function newKeyPair() {
  return crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

function line(out, label) {
  const m = out.match(new RegExp(`${label}:\\s+(\\S+)`));
  assert.ok(m, `zhifu sandbox printed no "${label}" line:\n${out}`);
  return m[1];
}

/**
 * Wraps the SDK's own response verification to keep each raw body it
 * verified, so a test can also check the `alipay_cert_sn` next to the
 * signature (the SDK's v2 `exec` verifies the signature but does not
 * compare the SN).
 */
function recordVerifiedBodies(sdk) {
  const bodies = [];
  const check = sdk.checkResponseSign.bind(sdk);
  sdk.checkResponseSign = (raw, ...rest) => {
    check(raw, ...rest);
    bodies.push(JSON.parse(raw));
  };
  return bodies;
}

function certSdk(appId, privateKey, certs, gateway) {
  return new AlipaySdk({
    appId,
    privateKey,
    keyType: 'PKCS8',
    gateway,
    camelcase: false,
    ...certs,
  });
}

test('official alipay-sdk in certificate mode: journey, notifications, rotation', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zhifu-cert-interop-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { publicKey, privateKey } = newKeyPair();
  fs.writeFileSync(path.join(dir, 'app_public_key.pem'), publicKey);
  const sb = await startSandbox(
    ['--cert-mode', '--cert-dir', dir, '--app-public-key', path.join(dir, 'app_public_key.pem')],
    { until: /Certificates:\s+\S+/ },
  );
  t.after(() => sb.stop());
  const rx = await startReceiver();
  t.after(() => rx.close());
  const appId = line(sb.out, 'App');
  const printed = {
    app: line(sb.out, 'App cert SN'),
    alipay: line(sb.out, 'Alipay cert SN'),
    root: line(sb.out, 'Root cert SN'),
  };

  const sdk = certSdk(appId, privateKey, {
    appCertPath: path.join(dir, `appCertPublicKey_${appId}.crt`),
    alipayPublicCertPath: path.join(dir, 'alipayCertPublicKey_RSA2.crt'),
    alipayRootCertPath: path.join(dir, 'alipayRootCert.crt'),
  }, sb.gateway);
  // The SDK computes the same three SNs from the files as the sandbox.
  assert.equal(sdk.config.appCertSn, printed.app);
  assert.equal(sdk.config.alipayCertSn, printed.alipay);
  assert.equal(sdk.config.alipayRootCertSn, printed.root);
  // The real root bundle format: the RSA root comes after an ECDSA root
  // that alipay_root_cert_sn skips, so the SN is a single one.
  assert.match(printed.root, /^[0-9a-f]{32}$/);
  const files = await api(sb.base, 'GET', '/sandbox/api/certs');
  assert.equal(files.alipay_root_cert_sn, printed.root);
  assert.equal(files.root_cert, fs.readFileSync(path.join(dir, 'alipayRootCert.crt'), 'utf8'));

  const verified = recordVerifiedBodies(sdk);
  const exec = (method, bizContent, extra = {}) => sdk.exec(method, { bizContent, ...extra }, V);
  const notifyUrl = `${rx.url}/notify`;

  const out = `NODECERT${Date.now()}`;
  const pre = await exec('alipay.trade.precreate',
    { out_trade_no: out, total_amount: '66.60', subject: '证书模式 cert mode' }, { notify_url: notifyUrl });
  assert.equal(pre.code, '10000');
  assert.match(pre.qr_code, /\/sandbox\/scan\//);
  assert.equal((await exec('alipay.trade.query', { out_trade_no: out })).sub_code, 'ACQ.TRADE_NOT_EXIST');

  const paid = await api(sb.base, 'POST', '/sandbox/api/trades/pay', { out_trade_no: out });
  assert.equal(paid.trade_status, 'TRADE_SUCCESS');
  const q = await exec('alipay.trade.query', { out_trade_no: out });
  assert.equal(q.trade_status, 'TRADE_SUCCESS');
  assert.equal(q.total_amount, '66.60');
  assert.equal(q.trade_no, paid.trade_no);

  const r1 = await exec('alipay.trade.refund', { out_trade_no: out, refund_amount: '6.60', out_request_no: 'C1' });
  assert.equal(r1.code, '10000');
  assert.equal(r1.refund_fee, '6.60');
  const rq = await exec('alipay.trade.fastpay.refund.query', { out_trade_no: out, out_request_no: 'C1' });
  assert.equal(rq.refund_status, 'REFUND_SUCCESS');

  // Every answer, successes and business failures alike, passed the SDK's
  // verification and names the Alipay certificate the SDK was given.
  assert.equal(verified.length, 5);
  for (const body of verified) assert.equal(body.alipay_cert_sn, sdk.config.alipayCertSn, JSON.stringify(body));

  // Notifications (paid, then the partial refund) verify with the key of
  // the Alipay certificate.
  await rx.waitFor(2);
  const notes = rx.hits.map((h) => formToObject(h.body));
  for (const n of notes) {
    assert.equal(sdk.checkNotifySign(n), true, JSON.stringify(n));
    assert.equal(n.app_id, appId);
  }
  assert.equal(notes[0].trade_status, 'TRADE_SUCCESS');
  assert.equal(notes[1].refund_fee, '6.60');

  // Alipay rotates its certificate: answers are signed with the new key
  // under a new alipay_cert_sn, so the SDK's verification now fails …
  const rotated = await api(sb.base, 'POST', '/sandbox/api/certs/rotate', {});
  assert.notEqual(rotated.alipay_cert_sn, printed.alipay);
  await assert.rejects(exec('alipay.trade.query', { out_trade_no: out }), /验签失败/);
  // … until the new certificate is downloaded by its SN
  // (alipay.open.app.alipaycert.download) and configured.
  const dl = await sdk.exec('alipay.open.app.alipaycert.download',
    { bizContent: { alipay_cert_sn: rotated.alipay_cert_sn } });
  assert.equal(dl.code, '10000');
  const newCert = Buffer.from(dl.alipay_cert_content, 'base64').toString('utf8');
  assert.equal(newCert, rotated.alipay_cert);
  const after = certSdk(appId, privateKey, {
    appCertContent: fs.readFileSync(path.join(dir, `appCertPublicKey_${appId}.crt`), 'utf8'),
    alipayPublicCertContent: newCert,
    alipayRootCertContent: fs.readFileSync(path.join(dir, 'alipayRootCert.crt'), 'utf8'),
  }, sb.gateway);
  assert.equal(after.config.alipayCertSn, rotated.alipay_cert_sn);
  const afterBodies = recordVerifiedBodies(after);
  const r2 = await after.exec('alipay.trade.refund',
    { bizContent: { out_trade_no: out, refund_amount: '60.00', out_request_no: 'C2' } }, V);
  assert.equal(r2.refund_fee, '66.60');
  const closed = await after.exec('alipay.trade.query', { bizContent: { out_trade_no: out } }, V);
  assert.equal(closed.trade_status, 'TRADE_CLOSED');
  assert.equal(afterBodies.length, 2);
  for (const body of afterBodies) assert.equal(body.alipay_cert_sn, rotated.alipay_cert_sn);
});

test('official alipay-sdk in certificate mode: wrong certificates get the real isv.* errors', async (t) => {
  const sb = await startSandbox(['--cert-mode'], { until: /Certificates:\s+\S+/ });
  t.after(() => sb.stop());
  const files = await api(sb.base, 'GET', '/sandbox/api/certs');
  // Two apps registered through the control API, each with a certificate
  // issued for its public key (content variants this time).
  const apps = [];
  for (let i = 0; i < 2; i += 1) {
    const { publicKey, privateKey } = newKeyPair();
    const app = await api(sb.base, 'POST', '/sandbox/api/apps', { app_public_key: publicKey });
    const cert = await api(sb.base, 'POST', '/sandbox/api/certs/app', { app_id: app.app_id, public_key: publicKey });
    assert.equal(cert.app_id, app.app_id);
    apps.push({ appId: app.app_id, privateKey, appCert: cert.app_cert, appCertSn: cert.app_cert_sn });
  }
  const [a, b] = apps;
  const contents = (appCert, root = files.root_cert) => ({
    appCertContent: appCert,
    alipayPublicCertContent: files.alipay_cert,
    alipayRootCertContent: root,
  });
  const query = (sdk) => sdk.exec('alipay.trade.query', { bizContent: { out_trade_no: 'NOPE' } }, V);

  const good = certSdk(a.appId, a.privateKey, contents(a.appCert), sb.gateway);
  assert.equal(good.config.appCertSn, a.appCertSn);
  assert.equal((await query(good)).sub_code, 'ACQ.TRADE_NOT_EXIST');

  // App B's certificate with app A's id: the SN names no certificate of A.
  const crossed = await query(certSdk(a.appId, a.privateKey, contents(b.appCert), sb.gateway));
  assert.equal(crossed.code, '40002');
  assert.equal(crossed.sub_code, 'isv.app-cert-not-exist');
  assert.equal(crossed.sub_msg, '应用公钥证书不存在');

  // A certificate from another authority (the SDK's own test fixture).
  const foreignApp = fs.readFileSync(path.join(UPSTREAM, 'appCertPublicKey_2021001161683774.crt'), 'utf8');
  const foreign = await query(certSdk(a.appId, a.privateKey, contents(foreignApp), sb.gateway));
  assert.equal(foreign.sub_code, 'isv.app-cert-not-exist');

  // The right app certificate with another root bundle.
  const otherRoot = fs.readFileSync(path.join(UPSTREAM, 'alipayRootCert.crt'), 'utf8');
  const root = await query(certSdk(a.appId, a.privateKey, contents(a.appCert, otherRoot), sb.gateway));
  assert.equal(root.code, '40002');
  assert.equal(root.sub_code, 'isv.invalid-alipay-root-cert-sn');
  assert.equal(root.sub_msg, '无效支付宝根证书序列号');

  // The right certificates but app B's private key: the certified key
  // does not verify the request.
  const badKey = await query(certSdk(a.appId, b.privateKey, contents(a.appCert), sb.gateway));
  assert.equal(badKey.sub_code, 'isv.invalid-signature');

  // Key mode against a gateway in certificate mode: no app_cert_sn at all.
  const keyMode = new AlipaySdk({
    appId: a.appId,
    privateKey: a.privateKey,
    keyType: 'PKCS8',
    alipayPublicKey: sb.alipayPublicKey,
    gateway: sb.gateway,
    camelcase: false,
  });
  assert.equal((await query(keyMode)).sub_code, 'isv.app-cert-not-exist');
});

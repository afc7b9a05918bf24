// Shared helpers: start the real `zhifu sandbox` binary on a free port,
// register a freshly generated app key, and receive notifications.
'use strict';
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { AlipaySdk } = require('alipay-sdk');

const REPO = path.resolve(__dirname, '../../../..');
const ZHIFU = process.env.ZHIFU_BIN
  || path.join(process.env.CARGO_TARGET_DIR || path.join(REPO, 'target'), 'debug/zhifu');

/**
 * Starts `zhifu sandbox --port 0 …` and resolves once it printed its URLs
 * (and, when given, a line matching `until`: in certificate mode the
 * certificate files are written after the URLs are printed).
 */
function startSandbox(extraArgs = [], { until } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(ZHIFU, ['sandbox', '--port', '0', '--time-scale', '0.001', ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => reject(new Error(`zhifu sandbox exited ${code}: ${err}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const gw = out.match(/Gateway:\s+(\S+)/);
      const key = out.match(/Alipay public key:\s+(\S+)/);
      if (gw && key && (!until || until.test(out))) {
        child.removeAllListeners('exit');
        resolve({
          child,
          out,
          gateway: gw[1],
          base: gw[1].replace(/\/gateway\.do$/, ''),
          alipayPublicKey: key[1],
          stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGINT'); }),
        });
      }
    });
  });
}

async function api(base, method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Registers a fresh app key; returns an AlipaySdk that verifies responses with the sandbox key. */
async function newApp(sb) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const app = await api(sb.base, 'POST', '/sandbox/api/apps', { app_public_key: publicKey });
  if (app.alipay_public_key !== sb.alipayPublicKey) throw new Error('key mismatch');
  const sdk = new AlipaySdk({
    appId: app.app_id,
    privateKey,
    keyType: 'PKCS8',
    alipayPublicKey: sb.alipayPublicKey,
    gateway: sb.gateway,
    camelcase: false,
  });
  return { sdk, appId: app.app_id, sellerId: app.seller_id, privateKey, publicKey };
}

/** A merchant notify endpoint: answers `success`, keeps every form body. */
function startReceiver() {
  return new Promise((resolve) => {
    const hits = [];
    const waiters = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        hits.push({ path: req.url, body, contentType: req.headers['content-type'] });
        res.end('success');
        while (waiters.length && waiters[0].n <= hits.length) waiters.shift().resolve();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({
        url,
        hits,
        /** Resolves when at least `n` notifications arrived (or rejects after `ms`). */
        waitFor(n, ms = 10000) {
          if (hits.length >= n) return Promise.resolve();
          return new Promise((resolveWait, rejectWait) => {
            const t = setTimeout(() => rejectWait(new Error(`only ${hits.length} of ${n} notifications`)), ms);
            waiters.push({ n, resolve: () => { clearTimeout(t); resolveWait(); } });
            waiters.sort((a, b) => a.n - b.n);
          });
        },
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}

/** Form body → plain object, decoded once (what a framework hands the merchant). */
function formToObject(body) {
  return Object.fromEntries(new URLSearchParams(body));
}

module.exports = { ZHIFU, startSandbox, api, newApp, startReceiver, formToObject };

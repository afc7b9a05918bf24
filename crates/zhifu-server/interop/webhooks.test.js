// A merchant's receiver written with the Standard Webhooks npm library
// (`standardwebhooks`, unchanged) verifies the webhooks of a real
// `zhifu dev --webhook-url`: a QR order is paid at the built-in sandbox,
// and the `order.paid` delivery must verify with the secret `zhifu dev`
// generated (given to the library as `whsec_` + base64), and must not
// verify once its body, its timestamp or the secret differ.
// Needs ZHIFU_BIN (the `zhifu` binary).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Webhook } = require('standardwebhooks');

const bin = process.env.ZHIFU_BIN;

function receiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end('ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, got, port: server.address().port })));
}

function startDev(dir, hookUrl) {
  const child = spawn(bin, ['dev', '--port', '0', '--data', dir, '--webhook-url', hookUrl], {
    env: { ...process.env, RUST_LOG: 'warn', ZHIFU_WEBHOOK_SECRET: '', ZHIFU_WEBHOOK_SECRET_FILE: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('zhifu dev did not start: ' + out)), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/running at (http:\/\/[0-9.:]+)/);
      if (m && out.includes('Webhooks')) {
        clearTimeout(timer);
        resolve({ child, base: m[1], out });
      }
    });
    child.on('exit', (code) => reject(new Error('zhifu dev exited with ' + code + ': ' + out)));
  });
}

async function call(base, key, method, p, body) {
  const r = await fetch(base + p, {
    method,
    headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, method + ' ' + p + ': ' + r.status + ' ' + text);
  return JSON.parse(text);
}

test('zhifu dev webhooks verify with the standardwebhooks library', { timeout: 90000 }, async () => {
  assert.ok(bin, 'ZHIFU_BIN must name the zhifu binary');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zhifu-webhooks-'));
  const hook = await receiver();
  // Environment secrets are ignored (empty), so `zhifu dev` generates one.
  delete process.env.ZHIFU_WEBHOOK_SECRET;
  const dev = await startDev(dir, `http://127.0.0.1:${hook.port}/hook`);
  try {
    const key = fs.readFileSync(path.join(dir, 'api_key'), 'utf8').trim();
    const secret = fs.readFileSync(path.join(dir, 'webhook_secret'), 'utf8').trim();
    const whsec = 'whsec_' + Buffer.from(secret, 'utf8').toString('base64');
    assert.ok(dev.out.includes(whsec), 'zhifu dev prints the Standard Webhooks form of its secret');

    const order = await call(dev.base, key, 'POST', '/v1/orders', { subject: 'Webhook mug', total_amount: '12.34' });
    await call(dev.base, key, 'POST', `/v1/orders/${order.id}/pay`, { channel: 'qr' });
    const paid = await fetch(dev.base + '/sandbox/api/trades/pay', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ out_trade_no: order.out_trade_no }),
    });
    assert.ok(paid.ok, 'the sandbox pays: ' + paid.status + ' ' + (await paid.text()));

    let delivery;
    for (let i = 0; i < 300 && !delivery; i += 1) {
      delivery = hook.got.find((d) => JSON.parse(d.body).type === 'order.paid');
      if (!delivery) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(delivery, 'order.paid was delivered');

    const verified = new Webhook(whsec).verify(delivery.body, delivery.headers);
    assert.strictEqual(verified.type, 'order.paid');
    assert.strictEqual(verified.data.order_id, order.id);
    assert.strictEqual(delivery.headers['webhook-id'], verified.id);
    assert.strictEqual(delivery.headers['zhifu-event-id'], verified.id);

    // Tampered body, moved timestamp, another secret: refused.
    const tampered = delivery.body.replace('"12.34"', '"99.99"');
    assert.notStrictEqual(tampered, delivery.body);
    assert.throws(() => new Webhook(whsec).verify(tampered, delivery.headers));
    const moved = { ...delivery.headers, 'webhook-timestamp': String(Number(delivery.headers['webhook-timestamp']) + 1) };
    assert.throws(() => new Webhook(whsec).verify(delivery.body, moved));
    const other = 'whsec_' + Buffer.from('another-secret-0123456789', 'utf8').toString('base64');
    assert.throws(() => new Webhook(other).verify(delivery.body, delivery.headers));
  } finally {
    dev.child.kill();
    hook.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

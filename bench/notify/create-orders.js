// For bench/notify.sh: creates N orders of ¥1.00 through the merchant API
// (16 requests in flight, kept-alive connections) and prints one
// "id out_trade_no" line per order; with CHANNEL, also asks for each
// order's payment parameters (as the shop would before showing the QR code).
// Usage: node create-orders.js BASE API_KEY N [CHANNEL]
'use strict';
const [base, key, n, channel] = process.argv.slice(2);
const total = Number(n);
let next = 0;
const out = [];
async function worker() {
  while (next < total) {
    next += 1;
    const r = await fetch(base + '/v1/orders', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'Bench tea', total_amount: '1.00' }),
    });
    if (r.status !== 201 && r.status !== 200) throw new Error('create: HTTP ' + r.status + ' ' + (await r.text()));
    const o = await r.json();
    if (channel) {
      const p = await fetch(base + '/v1/orders/' + o.id + '/pay', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' },
        body: JSON.stringify({ channel }),
      });
      if (p.status !== 200) throw new Error('pay: HTTP ' + p.status + ' ' + (await p.text()));
      await p.arrayBuffer();
    }
    out.push(o.id + ' ' + o.out_trade_no);
  }
}
Promise.all(Array.from({ length: 16 }, worker)).then(() => process.stdout.write(out.join('\n') + '\n'), (e) => {
  console.error(e.message);
  process.exit(1);
});

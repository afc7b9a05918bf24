// For bench/capacity.sh: the merchant's webhook endpoint, as small as one
// can be, so that what is measured is Zhifu's side of the delivery. Answers
// every POST with 204 and counts them by event type; `GET /` returns the
// counts as JSON ({"total": n, "order.paid": n, …}).
// Usage: node receiver.js PORT
'use strict';
const http = require('http');
const counts = { total: 0 };
http
  .createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(counts));
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      counts.total += 1;
      let type = 'unparsed';
      try {
        type = JSON.parse(Buffer.concat(chunks).toString('utf8')).type || 'untyped';
      } catch (_) {}
      counts[type] = (counts[type] || 0) + 1;
      res.writeHead(204);
      res.end();
    });
  })
  .listen(Number(process.argv[2]), '127.0.0.1');

// Timer-triggered SCF event function: runs one reconcile pass on the Zhifu
// web function (POST /v1/reconcile) and returns its report. The pass is
// idempotent and bounded; rows it could not handle are retried next time.
'use strict';
const http = require('http');
const https = require('https');

function post(url, key, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.request(
      u,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
        timeout: 55000,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

exports.main_handler = async () => {
  const base = (process.env.ZHIFU_API_URL || '').replace(/\/+$/, '');
  const key = process.env.ZHIFU_API_KEY || '';
  if (!base || !key) throw new Error('ZHIFU_API_URL and ZHIFU_API_KEY must be set');
  const res = await post(`${base}/v1/reconcile`, key, JSON.stringify({ max_seconds: 45 }));
  if (res.status !== 200) throw new Error(`reconcile answered HTTP ${res.status}: ${res.body}`);
  const report = JSON.parse(res.body);
  console.log(JSON.stringify({ paid: report.paid.length, closed: report.closed.length, errors: report.errors.length }));
  return report;
};

// For bench/notify.sh (b2): notifications for fresh orders, signed with the
// sandbox's Alipay key the way the sandbox signs them (RSA2 over the sorted
// `k=v` pairs without `sign`/`sign_type`), one form per line. The fields
// come from a genuine notification; ids and amounts are the order's.
// Usage: node sign-fresh.js TEMPLATE_FORM ALIPAY_PKCS8_B64 ORDERS_FILE > bodies
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const [templateFile, keyB64, ordersFile] = process.argv.slice(2);
const key = crypto.createPrivateKey({ key: Buffer.from(keyB64, 'base64'), format: 'der', type: 'pkcs8' });
const template = Object.fromEntries(new URLSearchParams(fs.readFileSync(templateFile, 'utf8')));
delete template.sign;
delete template.sign_type;
delete template.fund_bill_list;
const out = [];
fs.readFileSync(ordersFile, 'utf8').split('\n').filter(Boolean).forEach((outTradeNo, i) => {
  const f = { ...template, charset: 'utf-8', subject: 'Bench tea', out_trade_no: outTradeNo,
    notify_id: 'bench' + Date.now() + 'n' + i, trade_no: '2026120722001' + String(i).padStart(18, '0') };
  for (const k of ['total_amount', 'receipt_amount', 'invoice_amount', 'buyer_pay_amount']) {
    if (k in f) f[k] = '1.00';
  }
  const content = Object.keys(f).filter((k) => f[k] !== '').sort().map((k) => k + '=' + f[k]).join('&');
  const sign = crypto.sign('RSA-SHA256', Buffer.from(content, 'utf8'), key).toString('base64');
  out.push(new URLSearchParams({ ...f, sign_type: 'RSA2', sign }).toString());
});
process.stdout.write(out.join('\n') + '\n');

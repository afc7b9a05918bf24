// The baseline of bench/notify.sh: a notification endpoint built on the
// official alipay-sdk (npm), as its README shows it — parse the form, then
// `checkNotifySignV2`, answer `success`. Same Alipay public key, same body
// as Zhifu gets. Usage: node node-endpoint.js PORT ALIPAY_PUBLIC_KEY_B64 APP_KEY_PEM_FILE APP_ID
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const { AlipaySdk } = require(path.join(__dirname, '../../crates/alipay/interop/node_modules/alipay-sdk'));

const [port, alipayPublicKey, keyFile, appId] = process.argv.slice(2);
const sdk = new AlipaySdk({
  appId,
  privateKey: fs.readFileSync(keyFile, 'utf8'),
  alipayPublicKey,
});

http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      let ok = false;
      try {
        ok = sdk.checkNotifySignV2(params);
      } catch (_) {
        ok = false;
      }
      res.writeHead(ok ? 200 : 400, { 'content-type': 'text/plain' });
      res.end(ok ? 'success' : 'failure');
    });
  })
  .listen(Number(port), '127.0.0.1');

// Compiled (not run) by types.test.js: zhifu.d.ts describes zhifu.js the
// way a merchant's TypeScript uses it; each @ts-expect-error must stay an error.

const started: Promise<Zhifu.Checkout> = Zhifu.checkout({
  endpoint: "https://pay.example.com",
  sku: "mug",
  quantity: 1,
  channel: "auto",
  container: "#qr",
  onPaid: (s) => {
    const amount: string = s.total_amount;
    const paid: boolean = s.paid;
    const status: "pending" | "paid" | "closed" | "refunded" = s.status;
    console.log(amount, paid, status);
  },
  onError: (e) => console.log(e.code, e.message, e.status),
});

started.then((c) => {
  if (c.channel === "qr" && c.qr_svg) console.log(c.qr_svg.length, c.expires_at);
  if (c.channel === "jsapi") console.log(c.trade_no);
  c.watcher?.stop();
});

const w: Zhifu.Watcher = Zhifu.watch({ checkoutId: "co_x.y", onPaid: (s) => console.log(s.paid_at) });
w.stop();
Zhifu.status(undefined, "co_x.y", { refresh: true }).then((s) => console.log(s.expired));
const id: string | null = Zhifu.returnedCheckoutId();
const channel: "page" | "wap" | "jsapi" = Zhifu.detectChannel(navigator.userAgent);
const err = new Zhifu.ZhifuError("rate_limited", "slow down", 429);
console.log(id, channel, err.code, window.AlipayJSBridge?.call);

Zhifu.subscribe({ endpoint: "https://pay.example.com", sku: "pro-monthly", channel: "auto" }).then((sub) => {
  const status: Zhifu.SubscriptionStatus = sub.status;
  const amount: string = sub.amount;
  const unit: "month" | "day" = sub.period.unit;
  if (sub.sign.channel === "app") console.log(sub.sign.app_link.startsWith("alipays://"));
  else console.log(sub.sign.url, sub.sign.form_html);
  console.log(status, amount, unit, sub.max_periods, sub.result_url);
});
Zhifu.subscribe({ sku: "pro-monthly", channel: "app", redirect: false, onError: (e) => console.log(e.code) });
const subId: string | null = Zhifu.returnedSubscriptionId();
if (subId) {
  Zhifu.watchSubscription({
    checkoutId: subId,
    onActive: (s) => console.log(s.active, s.next_charge_date, s.periods_charged),
  }).stop();
  Zhifu.subscriptionStatus(undefined, subId, { refresh: true }).then((s) => console.log(s.status === "active"));
}

// @ts-expect-error: a subscription's price or plan cannot be given
Zhifu.subscribe({ sku: "pro-monthly", amount: "0.01" });
// @ts-expect-error: qr is not a way to sign
Zhifu.subscribe({ sku: "pro-monthly", channel: "qr" });
// @ts-expect-error: sku is required
Zhifu.subscribe({ channel: "page" });
// @ts-expect-error: a price cannot be given
Zhifu.checkout({ sku: "mug", total_amount: "0.01" });
// @ts-expect-error: unknown channel
Zhifu.checkout({ sku: "mug", channel: "cash" });
// @ts-expect-error: sku is required
Zhifu.checkout({ quantity: 1 });

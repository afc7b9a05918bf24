/* Chinese and English for the storefront, result and admin pages.
 * Elements carry data-i18n="key" (text) or data-i18n-attr="attr:key;attr:key". */
(function (root) {
  'use strict';
  var STRINGS = {
    zh: {
      'lang.switch': 'English',
      'lang.switchLabel': 'Switch to English',
      'skip': '跳到主要内容',
      'shop.title': 'Zhifu 演示商店',
      'shop.tagline': '用支付宝付款 — 本地沙箱，不涉及真实资金。',
      'shop.name': '商店',
      'shop.taglineLive': '使用支付宝付款。',
      'shop.admin': '订单管理',
      'shop.products': '商品',
      'shop.loading': '正在加载商品…',
      'shop.quantity': '数量',
      'shop.pay': '支付宝付款',
      'shop.payPhone': '支付宝付款',
      'shop.payQr': '扫码付款',
      'shop.payApp': '在支付宝中付款',
      'shop.working': '正在创建订单…',
      'shop.redirecting': '正在前往支付宝收银台…',
      'shop.qrTitle': '扫码付款',
      'shop.back': '返回商店',
      'shop.paidTitle': '付款成功',
      'shop.paidText': '已收到您的付款：{subject}，¥{amount}。',
      'shop.cancelled': '您已取消付款，订单未支付。',
      'shop.error': '出错了：{message}',
      'shop.unit': '单价',
      'err.rate_limited': '请求过于频繁，请稍后再试。',
      'err.network': '网络错误，请检查连接后重试。',
      'err.payment_unavailable': '支付暂时不可用，请稍后再试。',
      'err.invalid_quantity': '数量无效。',
      'result.title': '支付结果',
      'result.checking': '正在确认付款…',
      'result.checkingText': '正在向支付宝核实这笔订单的状态。',
      'result.paid': '已支付',
      'result.paidText': '付款成功，谢谢！',
      'result.refunded': '已退款',
      'result.refundedText': '这笔订单已全额退款。',
      'result.pending': '未支付',
      'result.pendingText': '我们尚未收到这笔订单的付款。如果您刚刚付过款，本页会自动更新。',
      'result.closed': '未支付',
      'result.closedText': '订单已关闭，未收到付款。',
      'result.unknown': '无法确认',
      'result.unknownText': '链接中没有可查询的订单。',
      'result.error': '暂时无法确认',
      'result.errorText': '暂时无法查询付款状态，请稍后刷新本页。',
      'result.again': '再查一次',
      'result.order': '订单',
      'result.amount': '金额',
      'result.status': '状态',
      'status.pending': '待支付',
      'status.paid': '已支付',
      'status.closed': '已关闭',
      'status.closing': '关闭中',
      'status.refunded': '已退款',
      'admin.title': '订单管理',
      'admin.keyLegend': '登录',
      'admin.key': 'API 密钥',
      'admin.keyHelp': '密钥只保存在此标签页（sessionStorage）中，关闭即清除。',
      'admin.signIn': '登录',
      'admin.signOut': '退出',
      'admin.filter': '状态',
      'admin.all': '全部',
      'admin.reload': '刷新',
      'admin.orders': '订单列表',
      'admin.created': '创建时间',
      'admin.outTradeNo': '订单号',
      'admin.subject': '商品',
      'admin.amount': '金额',
      'admin.status': '状态',
      'admin.more': '加载更多',
      'admin.none': '没有订单。',
      'admin.view': '查看',
      'admin.detail': '订单详情',
      'admin.closeDetail': '返回列表',
      'admin.id': '订单 ID',
      'admin.tradeNo': '支付宝交易号',
      'admin.buyer': '买家',
      'admin.refunded': '已退款金额',
      'admin.paidAt': '支付时间',
      'admin.expiresAt': '过期时间',
      'admin.metadata': '附加信息',
      'admin.refund': '退款',
      'admin.refundAmount': '退款金额（元）',
      'admin.refundReason': '退款原因（可选）',
      'admin.refundSubmit': '退款',
      'admin.refundDone': '退款 ¥{amount}：{status}',
      'admin.refundLeft': '最多可退 ¥{amount}。',
      'admin.refundAsk': '确认为订单 {order}（{subject}）退款 ¥{amount}？退款会原路退回买家，无法撤销。',
      'admin.refundConfirm': '确认退款',
      'admin.refundCancel': '取消',
      'admin.refundTooMuch': '退款金额不能超过可退金额 ¥{amount}。',
      'admin.close': '关闭订单',
      'admin.closeConfirm': '再按一次确认关闭',
      'admin.closed': '订单已关闭。',
      'admin.closing': '订单关闭中：买家手中的支付链接到期后即关闭；若仍有付款，将自动原路退回。',
      'admin.refunds': '退款记录',
      'admin.notifications': '支付宝通知',
      'admin.events': '状态变化与 Webhook 投递',
      'admin.webhooks': 'Webhook',
      'admin.nothing': '无',
      'admin.notExposed': '此服务器的 API 未提供：{what}。',
      'admin.when': '时间',
      'admin.event': '事件',
      'admin.source': '来源',
      'admin.badKey': 'API 密钥不正确。',
      'admin.error': '请求失败：{message}',
      'admin.loading': '加载中…'
    },
    en: {
      'lang.switch': '中文',
      'lang.switchLabel': '切换到中文',
      'skip': 'Skip to main content',
      'shop.title': 'Zhifu demo shop',
      'shop.tagline': 'Pay with Alipay — local sandbox, no real money moves.',
      'shop.name': 'Shop',
      'shop.taglineLive': 'Pay with Alipay.',
      'shop.admin': 'Orders',
      'shop.products': 'Products',
      'shop.loading': 'Loading products…',
      'shop.quantity': 'Quantity',
      'shop.pay': 'Pay with Alipay',
      'shop.payPhone': 'Pay with Alipay',
      'shop.payQr': 'Pay by QR code',
      'shop.payApp': 'Pay in Alipay',
      'shop.working': 'Creating your order…',
      'shop.redirecting': 'Taking you to the Alipay cashier…',
      'shop.qrTitle': 'Scan to pay',
      'shop.back': 'Back to the shop',
      'shop.paidTitle': 'Payment received',
      'shop.paidText': 'We received your payment: {subject}, ¥{amount}.',
      'shop.cancelled': 'You cancelled the payment; the order is not paid.',
      'shop.error': 'Something went wrong: {message}',
      'shop.unit': 'Unit price',
      'err.rate_limited': 'Too many requests; please wait a moment and try again.',
      'err.network': 'Network error; check your connection and try again.',
      'err.payment_unavailable': 'Payment is unavailable right now; please try again shortly.',
      'err.invalid_quantity': 'That quantity is not allowed.',
      'result.title': 'Payment result',
      'result.checking': 'Checking payment…',
      'result.checkingText': 'Asking Alipay for the status of this order.',
      'result.paid': 'Paid',
      'result.paidText': 'Your payment was received. Thank you!',
      'result.refunded': 'Refunded',
      'result.refundedText': 'This order was refunded in full.',
      'result.pending': 'Not paid',
      'result.pendingText': 'We have not received a payment for this order. If you have just paid, this page updates by itself.',
      'result.closed': 'Not paid',
      'result.closedText': 'The order was closed without payment.',
      'result.unknown': 'Cannot check',
      'result.unknownText': 'This link does not name an order we can check.',
      'result.error': 'Cannot check right now',
      'result.errorText': 'The payment status is unavailable right now; reload this page in a moment.',
      'result.again': 'Check again',
      'result.order': 'Order',
      'result.amount': 'Amount',
      'result.status': 'Status',
      'status.pending': 'Pending',
      'status.paid': 'Paid',
      'status.closed': 'Closed',
      'status.closing': 'Closing',
      'status.refunded': 'Refunded',
      'admin.title': 'Orders',
      'admin.keyLegend': 'Sign in',
      'admin.key': 'API key',
      'admin.keyHelp': 'The key stays in this tab only (sessionStorage) and is gone when you close it.',
      'admin.signIn': 'Sign in',
      'admin.signOut': 'Sign out',
      'admin.filter': 'Status',
      'admin.all': 'All',
      'admin.reload': 'Reload',
      'admin.orders': 'Orders',
      'admin.created': 'Created',
      'admin.outTradeNo': 'Order no.',
      'admin.subject': 'Item',
      'admin.amount': 'Amount',
      'admin.status': 'Status',
      'admin.more': 'Load more',
      'admin.none': 'No orders.',
      'admin.view': 'View',
      'admin.detail': 'Order detail',
      'admin.closeDetail': 'Back to the list',
      'admin.id': 'Order ID',
      'admin.tradeNo': 'Alipay trade no.',
      'admin.buyer': 'Buyer',
      'admin.refunded': 'Refunded',
      'admin.paidAt': 'Paid at',
      'admin.expiresAt': 'Expires at',
      'admin.metadata': 'Metadata',
      'admin.refund': 'Refund',
      'admin.refundAmount': 'Refund amount (yuan)',
      'admin.refundReason': 'Reason (optional)',
      'admin.refundSubmit': 'Refund',
      'admin.refundDone': 'Refund of ¥{amount}: {status}',
      'admin.refundLeft': 'Up to ¥{amount} can be refunded.',
      'admin.refundAsk': 'Refund ¥{amount} of order {order} ({subject})? The money goes back to the buyer; this cannot be undone.',
      'admin.refundConfirm': 'Confirm refund',
      'admin.refundCancel': 'Cancel',
      'admin.refundTooMuch': 'The refund cannot be more than the ¥{amount} left.',
      'admin.close': 'Close order',
      'admin.closeConfirm': 'Press again to confirm',
      'admin.closed': 'The order is closed.',
      'admin.closing': 'The order is closing: it closes once the buyer\'s payment link expires; a payment that still arrives is refunded automatically.',
      'admin.refunds': 'Refunds',
      'admin.notifications': 'Alipay notifications',
      'admin.events': 'State changes and webhook deliveries',
      'admin.webhooks': 'Webhook',
      'admin.nothing': 'None',
      'admin.notExposed': 'Not exposed by this server\'s API: {what}.',
      'admin.when': 'Time',
      'admin.event': 'Event',
      'admin.source': 'Source',
      'admin.badKey': 'That API key is not right.',
      'admin.error': 'Request failed: {message}',
      'admin.loading': 'Loading…'
    }
  };

  var KEY = 'zhifu.lang';
  function initial() {
    var q = null;
    try { q = new URL(root.location.href).searchParams.get('lang'); } catch (e) { q = null; }
    if (q === 'zh' || q === 'en') return q;
    try {
      var saved = root.localStorage.getItem(KEY);
      if (saved === 'zh' || saved === 'en') return saved;
    } catch (e) { /* storage may be disabled */ }
    return /^zh/i.test(root.navigator.language || '') ? 'zh' : 'en';
  }

  var lang = initial();
  var listeners = [];

  function t(key, vars) {
    var s = STRINGS[lang][key];
    if (s == null) s = STRINGS.en[key] != null ? STRINGS.en[key] : key;
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] != null ? String(vars[k]) : ''; });
  }

  function apply(rootEl) {
    var scope = rootEl || root.document;
    root.document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    var nodes = scope.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = t(nodes[i].getAttribute('data-i18n'));
    var attrs = scope.querySelectorAll('[data-i18n-attr]');
    for (var j = 0; j < attrs.length; j++) {
      var pairs = attrs[j].getAttribute('data-i18n-attr').split(';');
      for (var k = 0; k < pairs.length; k++) {
        var p = pairs[k].split(':');
        if (p.length === 2) attrs[j].setAttribute(p[0], t(p[1]));
      }
    }
    var title = root.document.querySelector('meta[name="zhifu-title"]');
    if (title) root.document.title = t(title.getAttribute('content'));
  }

  function set(l) {
    lang = l === 'zh' ? 'zh' : 'en';
    try { root.localStorage.setItem(KEY, lang); } catch (e) { /* ignore */ }
    apply();
    for (var i = 0; i < listeners.length; i++) listeners[i](lang);
  }

  function wireSwitch() {
    var b = root.document.getElementById('lang-switch');
    if (b) b.addEventListener('click', function () { set(lang === 'zh' ? 'en' : 'zh'); });
  }

  root.ZhifuI18n = {
    t: t,
    apply: apply,
    set: set,
    get lang() { return lang; },
    onChange: function (f) { listeners.push(f); }
  };

  if (root.document.readyState === 'loading') {
    root.document.addEventListener('DOMContentLoaded', function () { apply(); wireSwitch(); });
  } else {
    apply();
    wireSwitch();
  }
})(window);

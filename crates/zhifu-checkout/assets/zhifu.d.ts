// Type definitions for zhifu.js (served by a Zhifu server at /zhifu.js).
//
//   <script src="https://pay.example.com/zhifu.js"></script>
//   Zhifu.checkout({ endpoint: "https://pay.example.com", sku: "mug", quantity: 1,
//                    channel: "auto", onPaid: s => ..., onError: e => ... });
//   Zhifu.subscribe({ endpoint: "https://pay.example.com", sku: "pro-monthly" });

export {};

declare global {
  const Zhifu: Zhifu.Static;
  interface Window {
    Zhifu: Zhifu.Static;
    /** Injected by the Alipay app's in-app browser (or the sandbox stand-in). */
    AlipayJSBridge?: Zhifu.AlipayJSBridge;
  }

  namespace Zhifu {
    /** How the buyer pays. `auto`: jsapi in the Alipay app, wap on a phone, page elsewhere. */
    type Channel = "page" | "wap" | "qr" | "app" | "jsapi";
    type OrderStatus = "pending" | "paid" | "closed" | "refunded";

    /** Stable error codes: the server's (`unknown_sku`, `invalid_quantity`, `rate_limited`, …) or zhifu.js's own. */
    type ErrorCode =
      | "invalid_request"
      | "unknown_sku"
      | "invalid_quantity"
      | "invalid_channel"
      | "channel_disabled"
      | "invalid_return_url"
      | "rate_limited"
      | "checkout_not_found"
      | "order_not_payable"
      | "subscription_only"
      | "not_a_subscription"
      | "payment_unavailable"
      | "network"
      | "bad_answer"
      | "bridge_unavailable"
      | "cancelled"
      | "payment_failed"
      | "no_container"
      | "unexpected"
      | (string & {});

    interface ZhifuError extends Error {
      readonly name: "ZhifuError";
      readonly code: ErrorCode;
      /** HTTP status when the server answered, else 0. */
      readonly status: number;
    }

    /** What `GET /checkout/{id}` answers: status only. */
    interface CheckoutStatus {
      checkout_id: string;
      status: OrderStatus;
      /** `true` for `paid` and `refunded`. */
      paid: boolean;
      /** Pending and past its deadline. */
      expired: boolean;
      subject: string;
      /** Yuan, two decimals: `"88.88"`. */
      total_amount: string;
      currency: "CNY";
      /** Epoch milliseconds. */
      expires_at: number | null;
      paid_at: number | null;
      /** The server's clock, epoch milliseconds. */
      now: number;
    }

    /** What `POST /checkout` answers. */
    interface Checkout {
      checkout_id: string;
      channel: Channel;
      status: OrderStatus;
      /** The merchant order number, to show on a receipt. */
      out_trade_no: string;
      sku: string;
      quantity: number;
      subject: string;
      total_amount: string;
      currency: "CNY";
      expires_at: number | null;
      now: number;
      /** Absolute URL of `GET /checkout/{id}`. */
      status_url: string;
      /** The storefront's result page for this checkout. */
      result_url: string;
      /** page / wap: the cashier URL (zhifu.js navigates to it). */
      url?: string | null;
      /** page / wap: the same as an auto-submitting form. */
      form_html?: string | null;
      /** qr: the code's content, and the code rendered as SVG by the server. */
      qr_code?: string;
      qr_svg?: string;
      /** app: the order string for the native Alipay SDK. */
      order_string?: string;
      /** jsapi: the trade number for `AlipayJSBridge` `tradePay`. */
      trade_no?: string;
      /** qr / jsapi: the status poller zhifu.js started. */
      watcher?: Watcher;
    }

    interface CheckoutOptions {
      /** Base URL of the Zhifu server; default: this page's origin. */
      endpoint?: string;
      sku: string;
      /** Default 1. */
      quantity?: number;
      /** Default `"auto"`. */
      channel?: Channel | "auto";
      /** Where Alipay sends the buyer back (page/wap); must be an origin the server allows. `?zhifu_checkout=<id>` is appended. */
      returnUrl?: string;
      /** qr: the element (or selector) the QR panel is drawn into. */
      container?: Element | string;
      /** Language of the QR panel; default from `<html lang>` or the browser. */
      lang?: "zh" | "en";
      /**
       * jsapi: how the buyer is authorized when the server asks for it
       * (`authorization_required`): `"redirect"` (default) leaves for
       * Alipay's authorization page and comes back to `authorizeReturn`;
       * `"bridge"` uses the Alipay app's `getAuthCode`; `false` reports the
       * error instead. The server never takes a buyer id from the page.
       */
      authorize?: "redirect" | "bridge" | false;
      /** jsapi, `authorize: "redirect"`: the path to come back to; default this page. */
      authorizeReturn?: string;
      /** Poll interval for qr/jsapi, default 2000 ms. */
      pollIntervalMs?: number;
      onCreated?(checkout: Checkout): void;
      onStatus?(status: CheckoutStatus): void;
      /** Called once the server reports the order paid. */
      onPaid?(status: CheckoutStatus): void;
      onClosed?(status: CheckoutStatus): void;
      /** Past the deadline with no payment (polling has stopped). */
      onExpired?(status: CheckoutStatus): void;
      /** jsapi: the buyer cancelled in the Alipay cashier. */
      onCancel?(checkout: Checkout): void;
      onError?(error: ZhifuError): void;
    }

    interface AuthorizeOptions {
      /** Base URL of the Zhifu server; default: this page's origin. */
      endpoint?: string;
      /** Default `"redirect"`. */
      via?: "redirect" | "bridge";
      /** `"redirect"`: a path on the server's site to come back to; default this page. */
      returnTo?: string;
    }

    interface WatchOptions {
      endpoint?: string;
      checkoutId: string;
      pollIntervalMs?: number;
      /** Ask Alipay (server-side, verified) every n-th poll; default 5. */
      refreshEvery?: number;
      /** Ask Alipay on the first poll; default true. */
      refreshFirst?: boolean;
      /** Stop after this many polls (default: until final). */
      maxPolls?: number;
      onStatus?(status: CheckoutStatus): void;
      onPaid?(status: CheckoutStatus): void;
      onClosed?(status: CheckoutStatus): void;
      /** Past the deadline, confirmed with Alipay; polling stops. */
      onExpired?(status: CheckoutStatus): void;
      onError?(error: ZhifuError): void;
    }

    interface Watcher {
      stop(): void;
    }

    /** How the buyer signs a subscription's agreement. `auto`: wap on a phone (and in the Alipay app), page elsewhere. */
    type SignChannel = "page" | "wap" | "app";
    type SubscriptionStatus = "pending_signature" | "active" | "past_due" | "canceled" | "completed";

    interface SubscriptionPeriod {
      unit: "month" | "day";
      every: number;
    }

    /** What `GET /checkout/subscriptions/{id}` answers: status only. */
    interface SubscriptionCheckoutStatus {
      /** `cs_…`. */
      checkout_id: string;
      status: SubscriptionStatus;
      /** `status === "active"`. */
      active: boolean;
      subject: string;
      /** Charged each period, yuan with two decimals: `"30.00"`. */
      amount: string;
      currency: "CNY";
      period: SubscriptionPeriod;
      /** At most this many periods are charged; `null`: until cancelled. */
      max_periods: number | null;
      periods_charged: number;
      /** `yyyy-MM-dd` (Beijing date). */
      first_charge_date: string | null;
      next_charge_date: string | null;
      /** Epoch milliseconds. */
      activated_at: number | null;
      canceled_at: number | null;
      now: number;
    }

    /** What `POST /checkout/subscriptions` answers. */
    interface SubscriptionCheckout extends SubscriptionCheckoutStatus {
      sku: string;
      channel: SignChannel;
      status_url: string;
      /** The storefront's result page for this subscription. */
      result_url: string;
      sign:
        | { channel: "page" | "wap"; url?: string | null; form_html?: string | null }
        | { channel: "app"; app_link: string };
    }

    interface SubscribeOptions {
      /** Base URL of the Zhifu server; default: this page's origin. */
      endpoint?: string;
      /** A catalog product with a subscription plan; amount and period come from the catalog. */
      sku: string;
      /** Default `"auto"`. */
      channel?: SignChannel | "auto";
      /** page/wap: `false` resolves with the answer instead of leaving for Alipay. Default `true`. */
      redirect?: boolean;
      onCreated?(subscription: SubscriptionCheckout): void;
      onError?(error: ZhifuError): void;
    }

    interface WatchSubscriptionOptions {
      endpoint?: string;
      checkoutId: string;
      pollIntervalMs?: number;
      /** Ask Alipay (server-side, verified) every n-th poll; default 3. */
      refreshEvery?: number;
      /** Ask Alipay on the first poll; default true. */
      refreshFirst?: boolean;
      maxPolls?: number;
      onStatus?(status: SubscriptionCheckoutStatus): void;
      /** The signature is confirmed; polling stops. */
      onActive?(status: SubscriptionCheckoutStatus): void;
      onError?(error: ZhifuError): void;
    }

    interface QrView {
      setState(state: "pending" | "paid" | "expired" | "closed"): void;
      panel: HTMLElement;
    }

    interface AlipayJSBridge {
      call(
        name: "tradePay",
        params: { tradeNO: string },
        callback: (result: { resultCode: string; memo?: string; result?: string }) => void,
      ): void;
      call(name: string, params: unknown, callback?: (result: unknown) => void): void;
    }

    interface Static {
      readonly version: string;
      checkout(options: CheckoutOptions): Promise<Checkout>;
      /**
       * Alipay user authorization of the buyer for jsapi checkouts (the
       * server keeps the buyer in an HttpOnly cookie). `"redirect"` leaves
       * the page (the promise never settles); `"bridge"` resolves once the
       * server has the buyer.
       */
      authorize(options?: AuthorizeOptions): Promise<{ authorized: true }>;
      /** Creates a subscription and sends the buyer to Alipay to sign (page/wap), or resolves with `sign.app_link` (app). */
      subscribe(options: SubscribeOptions): Promise<SubscriptionCheckout>;
      subscriptionStatus(
        endpoint: string | undefined,
        checkoutId: string,
        options?: { refresh?: boolean },
      ): Promise<SubscriptionCheckoutStatus>;
      watchSubscription(options: WatchSubscriptionOptions): Watcher;
      /** The subscription checkout id for a page Alipay returned to after signing (`?zhifu_subscription=`), if any. */
      returnedSubscriptionId(href?: string): string | null;
      watch(options: WatchOptions): Watcher;
      status(endpoint: string | undefined, checkoutId: string, options?: { refresh?: boolean }): Promise<CheckoutStatus>;
      renderQr(container: Element | string, checkout: Checkout, options?: { lang?: "zh" | "en" }): QrView;
      detectChannel(userAgent?: string): Exclude<Channel, "qr" | "app">;
      inAlipayApp(userAgent?: string): boolean;
      /** The `zhifu_checkout` parameter of a return URL (default: this page's). */
      returnedCheckoutId(href?: string): string | null;
      ZhifuError: new (code: ErrorCode, message?: string, status?: number) => ZhifuError;
    }
  }
}

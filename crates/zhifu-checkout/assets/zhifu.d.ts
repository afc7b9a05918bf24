// Type definitions for zhifu.js (served by a Zhifu server at /zhifu.js).
//
//   <script src="https://pay.example.com/zhifu.js"></script>
//   Zhifu.checkout({ endpoint: "https://pay.example.com", sku: "mug", quantity: 1,
//                    channel: "auto", onPaid: s => ..., onError: e => ... });

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
      /** jsapi: the buyer's Alipay user id / open id, if your page has it. */
      buyerId?: string;
      buyerOpenId?: string;
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

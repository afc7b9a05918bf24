//! The HTTP surface: [`Sandbox::router`] (the gateway, the buyer's pages,
//! the console with its action forms, and the control API) and
//! [`Sandbox::serve`].

use axum::Router;
use axum::routing::{get, post};

use crate::console;
use crate::console_actions;
use crate::console_agreements;
use crate::control;
use crate::gateway;
use crate::pages;
use crate::sandbox::Sandbox;

impl Sandbox {
    /// Serves [`Sandbox::router`] on `listener` until `shutdown` resolves,
    /// then stops the worker.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let r = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        self.shutdown().await;
        r
    }

    /// All sandbox routes: `/gateway.do` and everything under `/sandbox/`,
    /// so the router can be merged next to another service's.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/gateway.do", get(gateway::gateway).post(gateway::gateway))
            .route("/sandbox", get(console::index))
            .route("/sandbox/", get(console::index))
            .route(
                "/sandbox/trades/{app_id}/{out_trade_no}",
                get(console::trade),
            )
            .route(
                "/sandbox/trades/{app_id}/{out_trade_no}/{action}",
                post(console_actions::trade_action),
            )
            .route("/sandbox/notifications", get(console::notifications))
            .route("/sandbox/agreements", get(console_agreements::agreements))
            .route(
                "/sandbox/notifications/{id}/resend",
                post(console_actions::resend),
            )
            .route("/sandbox/clock/advance", post(console_actions::advance))
            .route("/sandbox/cashier/{token}", get(pages::cashier))
            .route("/sandbox/cashier/{token}/pay", post(pages::cashier_pay))
            .route(
                "/sandbox/cashier/{token}/cancel",
                post(pages::cashier_cancel),
            )
            .route("/sandbox/scan/{token}", get(pages::cashier))
            .route(
                "/sandbox/app-pay",
                get(pages::app_pay_form).post(pages::app_pay_submit),
            )
            .route("/sandbox/bills/{token}", get(pages::bill))
            .merge(crate::agreement_pages::routes())
            .merge(control::routes())
            .merge(crate::cert_mode::routes())
            .with_state(self.clone())
    }
}

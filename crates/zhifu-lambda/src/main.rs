//! `zhifu-lambda`: the Lambda bootstrap. Reads the configuration once, then
//! hands the router to `lambda_http` (HTTP events) or runs the reconcile
//! handler (scheduled events), as `ZHIFU_LAMBDA_HANDLER` says.

use std::process::ExitCode;

use lambda_http::{LambdaEvent, service_fn};
use serde_json::Value;
use zhifu_lambda::{Handler, init};
use zhifu_server::config::Source;

fn main() -> ExitCode {
    lambda_http::tracing::init_default_subscriber();
    // One invocation at a time per instance: a single-threaded runtime starts
    // faster and is all the function uses.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run())
}

async fn run() -> ExitCode {
    let f = match Source::from_env() {
        Ok(src) => init(&src).await,
        Err(e) => Err(e.into()),
    };
    let f = match f {
        Ok(f) => f,
        Err(e) => {
            // Lambda reports the exit as an init failure; the message names
            // the variable and never a secret.
            tracing::error!(error = %zhifu_server::error::chain(&e), "cold start failed");
            return ExitCode::from(2);
        }
    };
    let result = match f.handler {
        Handler::Http => lambda_http::run(zhifu_lambda::http_service(f.state)).await,
        Handler::Reconcile => {
            let (state, opts) = (f.state, f.reconcile);
            lambda_http::lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
                let (state, opts) = (state.clone(), opts.clone());
                async move { zhifu_lambda::reconcile(&state, &opts, ev).await }
            }))
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}

//! Fault points for crash tests: named places on the money path where a
//! test build can be told to stop dead, so that a test can kill the process
//! there with SIGKILL and check what survives.
//!
//! Compiled in only with the `fault-injection` feature, which only test
//! builds enable (the `zhifu` crate's dev-dependencies); in every other
//! build [`point`] is an empty inline function. When the feature is on and
//! `ZHIFU_FAULT_POINT` names the point being passed, the process writes
//! `ZHIFU_FAULT_POINT_REACHED <name>` to stderr and waits forever: the
//! test sees the line and sends the signal, so the kill lands exactly there
//! rather than at a time a sleep guessed.

/// After a notification's change committed, before `success` is answered.
pub const NOTIFY_COMMITTED: &str = "notify.committed";
/// Inside a refund: the gateway call returned, its settlement not stored.
pub const REFUND_CALLED: &str = "refund.called";
/// In a reconcile pass, after the first order was brought up to date.
pub const RECONCILE_MID_PASS: &str = "reconcile.mid_pass";

/// In a subscription charging pass: Alipay charged the period, Zhifu has
/// not recorded it.
pub const SUBSCRIPTION_CHARGED: &str = "subscription.charged";

/// Stops here when the test build was told to (see the module docs).
#[cfg(feature = "fault-injection")]
pub async fn point(name: &str) {
    if armed(name) {
        std::future::pending::<()>().await;
    }
}

/// Whether `name` is armed; if so, says so on stderr (flushed).
#[cfg(feature = "fault-injection")]
fn armed(name: &str) -> bool {
    use std::io::Write;
    let armed = std::env::var("ZHIFU_FAULT_POINT").is_ok_and(|v| v.split(',').any(|p| p == name));
    if armed {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "ZHIFU_FAULT_POINT_REACHED {name}");
        let _ = err.flush();
    }
    armed
}

/// Stops here when the test build was told to (see the module docs).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub async fn point(_name: &str) {}

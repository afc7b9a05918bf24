//! Scheduled work: the reconcile pass, which brings orders, refunds and
//! webhook deliveries up to date by calling [`crate::payments`] and
//! [`crate::outbox`] directly. No HTTP here; `POST /v1/reconcile`, the FC
//! timer router and the Lambda scheduled handler only start a pass.

pub mod reconcile;

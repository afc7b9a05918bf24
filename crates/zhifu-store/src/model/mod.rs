//! Domain records. Money in fen (`i64`), times in epoch milliseconds (`i64`).
//!
//! Split by what the records describe; everything is re-exported flat from
//! the crate root, so the file a type lives in is not part of the API.

mod order;
mod outbox;
mod refund;
mod report;
mod subscription;

pub use self::order::*;
pub use self::outbox::*;
pub use self::refund::*;
pub use self::report::*;
pub use self::subscription::*;

//! What a sequence does, drawn up front from its seed: the server's
//! settings, the orders, and a list of operations that name orders by index
//! and carry every random choice, so that a list can be replayed (or cut
//! down) without the generator.

use std::fmt;

/// splitmix64: tiny, deterministic, good enough to pick operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `pct`/100.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.index(xs.len())]
    }
}

pub const CHANNELS: [&str; 5] = ["page", "wap", "qr", "app", "jsapi"];

/// The server's money settings for a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    /// `late_payment = keep` instead of the default refund.
    pub keep: bool,
    /// `refund_spacing` in ms (0 in the kit's default).
    pub spacing_ms: u64,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "late_payment={} refund_spacing={}ms",
            if self.keep { "keep" } else { "refund" },
            self.spacing_ms
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct OrderSpec {
    pub total_fen: i64,
    /// `expires_in_minutes`; `None` = the server's default (30).
    pub expires_in_minutes: Option<i64>,
}

/// Notification faults, at rate 1.0 while set (the sandbox draws partial
/// rates from its own RNG, which a replay would not repeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFault {
    None,
    Drop,
    Duplicate,
    Reorder,
    Delay,
}

/// Gateway faults, for the duration of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayFault {
    /// `20000`/`ACQ.SYSTEM_ERROR` after the call took effect.
    ErrorAfterCommit,
    /// `20000` and nothing happened.
    ErrorBeforeCommit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// What is left according to the order (total − refunded − pending),
    /// at least 0.01.
    Rest,
    Fen(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    None,
    /// A fresh `Idempotency-Key`.
    New,
    /// The n-th key of the sequence again, same body: a retry (a fresh key
    /// when there is no n-th yet).
    Retry(usize),
    /// The n-th key again with another amount: refused.
    Misuse(usize),
}

#[derive(Debug, Clone)]
pub enum Op {
    /// `POST /v1/orders/{id}/pay`.
    Pay { o: usize, channel: &'static str },
    /// The buyer's browser takes page/wap/app parameters to the gateway.
    BuyerVisit { o: usize },
    /// The buyer opens the cashier / scans, without paying.
    BuyerOpen { o: usize },
    /// The buyer pays (visiting the gateway first if needed), then due
    /// notifications are delivered.
    BuyerPay { o: usize },
    /// The buyer opens the cashier and presses Cancel.
    BuyerAbandon { o: usize },
    /// `POST /v1/orders/{id}/close`.
    Close { o: usize },
    /// The merchant closes while the buyer pays (`tokio::join!`).
    CloseWhileBuyerPays { o: usize },
    /// `POST /v1/orders/{id}/refunds`.
    Refund { o: usize, amount: Amount, key: Key },
    /// Two refund requests at once: one key twice, or two without a key.
    RefundTwice {
        o: usize,
        amount: Amount,
        same_key: bool,
    },
    /// `GET /v1/orders/{id}?refresh=true`.
    Refresh { o: usize },
    /// Sets the notification faults (until changed or the sequence ends).
    NotifyFaults(NotifyFault),
    /// One operation with a gateway fault on every call it makes.
    WithGatewayFault { fault: GatewayFault, op: Box<Op> },
    /// Deliver due notifications (sandbox `advance 0`).
    Deliver,
    /// Both clocks forward.
    Advance { secs: u64 },
    /// One reconcile pass (two at once with `concurrent`), after moving
    /// both clocks past the leases when `past_leases`.
    Reconcile { concurrent: bool, past_leases: bool },
    /// A pass while notifications are being delivered.
    ReconcileWhileDelivering,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub variant: Variant,
    pub orders: Vec<OrderSpec>,
    pub ops: Vec<Op>,
}

impl Plan {
    /// Whether any operation injects gateway faults.
    pub fn gateway_faulted(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::WithGatewayFault { .. }))
    }
}

fn amount(rng: &mut Rng, total: i64) -> Amount {
    match rng.below(10) {
        0..=2 => Amount::Rest,
        3 => Amount::Fen(total),
        4 => Amount::Fen(total + 1 + rng.below(100) as i64),
        _ => Amount::Fen(1 + rng.below(total as u64 / 2 + 1) as i64),
    }
}

fn key(rng: &mut Rng, keys: &mut usize) -> Key {
    let key = match rng.below(6) {
        0 | 1 => Key::None,
        2 | 3 => Key::New,
        4 if *keys > 0 => Key::Retry(rng.index(*keys)),
        5 if *keys > 0 => Key::Misuse(rng.index(*keys)),
        _ => Key::New,
    };
    if key == Key::New {
        *keys += 1;
    }
    key
}

fn plain_op(rng: &mut Rng, orders: &[OrderSpec], keys: &mut usize) -> Op {
    let o = rng.index(orders.len());
    let total = orders[o].total_fen;
    // Weights out of 100.
    match rng.below(100) {
        0..=9 => Op::Pay {
            o,
            channel: rng.pick(&CHANNELS),
        },
        10..=12 => Op::BuyerVisit { o },
        13..=16 => Op::BuyerOpen { o },
        17..=32 => Op::BuyerPay { o },
        33..=34 => Op::BuyerAbandon { o },
        35..=40 => Op::Close { o },
        41..=43 => Op::CloseWhileBuyerPays { o },
        44..=61 => Op::Refund {
            o,
            amount: amount(rng, total),
            key: key(rng, keys),
        },
        62..=66 => Op::RefundTwice {
            o,
            amount: amount(rng, total),
            same_key: rng.pct(60),
        },
        67..=69 => Op::Refresh { o },
        70..=74 => Op::NotifyFaults(rng.pick(&[
            NotifyFault::None,
            NotifyFault::Drop,
            NotifyFault::Duplicate,
            NotifyFault::Reorder,
            NotifyFault::Delay,
        ])),
        75..=79 => Op::Deliver,
        80..=87 => Op::Advance {
            secs: rng.pick(&[5, 61, 61, 130, 241, 241, 31 * 60]),
        },
        88..=96 => Op::Reconcile {
            concurrent: rng.pct(25),
            past_leases: rng.pct(50),
        },
        _ => Op::ReconcileWhileDelivering,
    }
}

/// The plan of one sequence.
pub fn generate(seed: u64, max_ops: usize) -> Plan {
    let mut rng = Rng::new(seed);
    let variant = match rng.below(10) {
        0 | 1 => Variant {
            keep: true,
            spacing_ms: 0,
        },
        2 | 3 => Variant {
            keep: false,
            spacing_ms: 50,
        },
        _ => Variant {
            keep: false,
            spacing_ms: 0,
        },
    };
    let orders = (0..1 + rng.index(3))
        .map(|_| OrderSpec {
            total_fen: 100 + rng.below(9_900) as i64,
            expires_in_minutes: match rng.below(3) {
                0 => None,
                1 => Some(1),
                _ => Some(2 + rng.below(3) as i64),
            },
        })
        .collect::<Vec<_>>();
    let n = 6 + rng.index(max_ops.saturating_sub(5).max(1));
    let faulty = rng.pct(60);
    let mut keys = 0;
    let mut ops = Vec::with_capacity(n + orders.len());
    // Most orders are offered for payment first.
    for o in 0..orders.len() {
        if rng.pct(80) {
            ops.push(Op::Pay {
                o,
                channel: rng.pick(&CHANNELS),
            });
        }
    }
    for _ in 0..n {
        let op = plain_op(&mut rng, &orders, &mut keys);
        let wrap = faulty
            && rng.pct(15)
            && matches!(
                op,
                Op::Pay { .. }
                    | Op::Close { .. }
                    | Op::Refund { .. }
                    | Op::RefundTwice { .. }
                    | Op::Refresh { .. }
                    | Op::Reconcile { .. }
                    | Op::CloseWhileBuyerPays { .. }
            );
        ops.push(if wrap {
            Op::WithGatewayFault {
                fault: if rng.pct(70) {
                    GatewayFault::ErrorAfterCommit
                } else {
                    GatewayFault::ErrorBeforeCommit
                },
                op: Box::new(op),
            }
        } else {
            op
        });
    }
    Plan {
        seed,
        variant,
        orders,
        ops,
    }
}

//! Model-based randomized test of the money path: seeded random sequences
//! over a few orders — create, pay on every channel, the buyer visiting /
//! opening / paying / abandoning in the sandbox, merchant closes (also
//! racing the buyer), partial and full refunds with and without
//! `Idempotency-Key`, retries and misuses of a key, concurrent duplicates,
//! notifications dropped / duplicated / reordered / delayed, gateway
//! `20000`s before and after the change was made, reconcile passes (also
//! two at once, or during deliveries), and both clocks moved past
//! deadlines — with the answers each operation must get and the money
//! invariants checked after every step. At the end of a sequence every
//! fault is cleared, notifications drained, both clocks moved past every
//! deadline + close margin and lease, reconcile run to rest, and Zhifu must
//! agree with the sandbox's trades on every order (`model/check.rs`).
//!
//! - `MODEL_SEQUENCES` (default 100) sequences per backend, seeds
//!   `MODEL_BASE_SEED + i` (the base is random unless given, and printed);
//! - `SEEDS=a,b,c` or `SEED=n`: exactly those (a failing seed replays);
//! - `MODEL_OPS` (default 24): most operations per sequence;
//! - `MODEL_KEEP=i,j,…` with `SEED`: only those operations (a cut-down
//!   sequence, as `MODEL_SHRINK=1` prints when it minimises a failure);
//!   `MODEL_REPEAT=n` runs each given seed n times (for races);
//! - `MODEL_ALLOW=name,…`: tolerate known bugs by name (see `allowed` in
//!   `model/run.rs`) to look past them in long runs; strict by default.
//!
//! Sequences of one server configuration share a server and sandbox (a
//! fresh one every 150 sequences); each has its own orders. SQLite and
//! PostgreSQL (`ZHIFU_TEST_DATABASE_URL`). `scripts/model-test` runs longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

/// `ensure!(cond, "fmt", args…)`: a model check; fails the sequence with
/// the message.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

#[path = "model/check.rs"]
mod check;
#[path = "model/plan.rs"]
mod plan;
#[path = "model/refunds.rs"]
mod refunds;
#[path = "model/run.rs"]
mod run;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Options, TestApp, spawn_app};
use plan::{Plan, Variant, generate};
use run::Runner;
use zhifu_server::config::{LatePaymentPolicy, MoneyPolicy};
use zhifu_store::Backend;
use zhifu_store::testing::{TestDatabase, fresh_database};

zhifu_store::backend_tests!(model_sequences);

/// Sequences one server serves before it is replaced (its database and
/// the sandbox's trade list only grow).
const APP_LIFETIME: usize = 150;

struct Config {
    seeds: Vec<u64>,
    max_ops: usize,
    keep: Option<Vec<usize>>,
    shrink: bool,
    explicit: bool,
}

fn env_list(name: &str) -> Option<Vec<u64>> {
    let v = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
    Some(
        v.split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: `{x}` is not a number"))
            })
            .collect(),
    )
}

fn config() -> Config {
    let max_ops = env_list("MODEL_OPS")
        .and_then(|v| v.first().copied())
        .unwrap_or(24) as usize;
    let keep = env_list("MODEL_KEEP").map(|v| v.into_iter().map(|i| i as usize).collect());
    let shrink = std::env::var("MODEL_SHRINK").is_ok_and(|v| v == "1");
    if let Some(seeds) = env_list("SEEDS").or_else(|| env_list("SEED")) {
        // Races may need several tries: MODEL_REPEAT runs each seed n times.
        let n = env_list("MODEL_REPEAT")
            .and_then(|v| v.first().copied())
            .unwrap_or(1);
        return Config {
            seeds: seeds
                .into_iter()
                .flat_map(|s| std::iter::repeat_n(s, n as usize))
                .collect(),
            max_ops,
            keep,
            shrink,
            explicit: true,
        };
    }
    let n = env_list("MODEL_SEQUENCES")
        .and_then(|v| v.first().copied())
        .unwrap_or(100);
    let base = env_list("MODEL_BASE_SEED")
        .and_then(|v| v.first().copied())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            // Small numbers are easier to type back in.
            (t.as_nanos() as u64 ^ u64::from(std::process::id())) % 1_000_000_000
        });
    Config {
        seeds: (0..n).map(|i| base + i).collect(),
        max_ops,
        keep,
        shrink,
        explicit: false,
    }
}

async fn new_app(db: TestDatabase, v: Variant) -> TestApp {
    spawn_app(
        db,
        Options {
            money: MoneyPolicy {
                late_payment: if v.keep {
                    LatePaymentPolicy::Keep
                } else {
                    LatePaymentPolicy::Refund
                },
                refund_spacing: Duration::from_millis(v.spacing_ms),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
}

/// One server per configuration, replaced after [`APP_LIFETIME`] sequences.
struct Apps {
    backend: Backend,
    spare: Option<TestDatabase>,
    apps: HashMap<Variant, (TestApp, usize)>,
}

impl Apps {
    async fn get(&mut self, v: Variant) -> &TestApp {
        if let Some((app, used)) = self.apps.get(&v)
            && *used >= APP_LIFETIME
        {
            app.store.close().await;
            self.apps.remove(&v);
        }
        if !self.apps.contains_key(&v) {
            let db = match self.spare.take() {
                Some(db) => db,
                None => fresh_database(self.backend).await.unwrap(),
            };
            self.apps.insert(v, (new_app(db, v).await, 0));
        }
        let (app, used) = self.apps.get_mut(&v).unwrap();
        *used += 1;
        app
    }
}

/// Runs `ops` (indices into the plan) of one sequence; a failure is the
/// message and what happened.
type Stats = std::collections::BTreeMap<&'static str, usize>;

async fn run_sequence(
    app: &TestApp,
    plan: &Plan,
    ops: &[usize],
) -> Result<Stats, (String, Vec<String>)> {
    let mut r = Runner::new(app, plan);
    r.clear_faults().await;
    r.create_orders().await;
    for &i in ops {
        let op = &plan.ops[i];
        let res = match r.step(op).await {
            Ok(()) => r.check_always().await,
            e => e,
        };
        if let Err(e) = res {
            return Err((format!("operation {i} ({op:?}): {e}"), r.log));
        }
    }
    let res = match r.settle().await {
        Ok(()) => match r.check_always().await {
            Ok(()) => r.check_at_rest().await,
            e => e,
        },
        e => e,
    };
    match res {
        Ok(()) => {
            r.tally().await;
            r.stats.insert("operations", ops.len());
            Ok(r.stats)
        }
        Err(e) => Err((format!("at rest: {e}"), r.log)),
    }
}

/// Cuts operations out of a failing sequence while it keeps failing.
async fn shrink(app: &TestApp, plan: &Plan, mut ops: Vec<usize>) -> Vec<usize> {
    let mut i = 0;
    while i < ops.len() {
        let mut candidate = ops.clone();
        candidate.remove(i);
        if run_sequence(app, plan, &candidate).await.is_err() {
            ops = candidate;
        } else {
            i += 1;
        }
    }
    ops
}

async fn model_sequences(db: TestDatabase) {
    let cfg = config();
    let backend = db.backend;
    let mut apps = Apps {
        backend,
        spare: Some(db),
        apps: HashMap::new(),
    };
    if !cfg.explicit {
        eprintln!(
            "model[{backend:?}]: {} sequences, seeds {}..={} (replay one with SEED=<n>)",
            cfg.seeds.len(),
            cfg.seeds[0],
            cfg.seeds[cfg.seeds.len() - 1]
        );
    }
    let started = Instant::now();
    let mut stats = Stats::new();
    for &seed in &cfg.seeds {
        let plan = generate(seed, cfg.max_ops);
        let ops: Vec<usize> = match &cfg.keep {
            Some(k) => k.iter().copied().filter(|i| *i < plan.ops.len()).collect(),
            None => (0..plan.ops.len()).collect(),
        };
        eprintln!(
            "model[{backend:?}]: seed {seed} ({}, {} order(s), {} operations)",
            plan.variant,
            plan.orders.len(),
            ops.len()
        );
        let app = apps.get(plan.variant).await;
        match run_sequence(app, &plan, &ops).await {
            Ok(s) => {
                for (k, v) in s {
                    *stats.entry(k).or_default() += v;
                }
            }
            Err((msg, log)) => {
                let mut report = format!(
                    "model[{backend:?}]: seed {seed} failed ({}): {msg}\n\
                     replay: SEED={seed} cargo test -p zhifu-server --test model\n\
                     orders: {:?}\nwhat happened:\n  {}",
                    plan.variant,
                    plan.orders,
                    log.join("\n  ")
                );
                if cfg.shrink {
                    let small = shrink(app, &plan, ops.clone()).await;
                    let keep: Vec<String> = small.iter().map(ToString::to_string).collect();
                    report.push_str(&format!(
                        "\nminimised: SEED={seed} MODEL_KEEP={} cargo test -p zhifu-server --test model\n  {}",
                        keep.join(","),
                        small
                            .iter()
                            .map(|i| format!("{i}: {:?}", plan.ops[*i]))
                            .collect::<Vec<_>>()
                            .join("\n  ")
                    ));
                    if let Err((msg, log)) = run_sequence(app, &plan, &small).await {
                        report.push_str(&format!("\nits failure: {msg}\n  {}", log.join("\n  ")));
                    }
                }
                panic!("{report}");
            }
        }
    }
    eprintln!(
        "model[{backend:?}]: {} sequences in {:.1?}: {stats:?}",
        cfg.seeds.len(),
        started.elapsed()
    );
}

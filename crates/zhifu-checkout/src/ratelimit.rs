//! Per-client token buckets, and who the client is.
//!
//! Each client (an IPv4 address, or an IPv6 /64 — one subscriber usually
//! holds a whole /64) has a bucket of `burst` tokens refilled at
//! `per_minute`. The table is bounded: when full, buckets that have
//! refilled completely are forgotten (they hold no information), and if
//! that is not enough, new clients share one overflow bucket rather than
//! growing memory without limit. The limiter is per process; in a fleet of
//! functions each instance limits on its own.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use http::HeaderMap;

/// A rate: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Bucket size.
    pub burst: u32,
    /// Tokens added per minute.
    pub per_minute: u32,
}

impl RateLimit {
    fn refill_per_sec(self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The client key: an address, or the overflow bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Overflow,
}

/// A bounded table of token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    max_clients: usize,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

impl RateLimiter {
    /// A limiter remembering at most `max_clients` clients.
    pub fn new(limit: RateLimit, max_clients: usize) -> Self {
        RateLimiter {
            limit,
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client` at `now`.
    ///
    /// # Errors
    /// How long until a token is available when there is none.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.limit.burst == 0 {
            return Err(Duration::from_secs(60));
        }
        let rate = self.limit.refill_per_sec();
        let burst = f64::from(self.limit.burst);
        // A poisoned lock only means another request panicked mid-update;
        // the table is still a valid (if slightly stale) set of buckets.
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = Key::Ip(normalise(client));
        if !map.contains_key(&key) && map.len() >= self.max_clients {
            let full_after = if rate > 0.0 {
                burst / rate
            } else {
                f64::INFINITY
            };
            map.retain(|k, b| {
                *k == Key::Overflow
                    || now.saturating_duration_since(b.at).as_secs_f64() < full_after
            });
            if map.len() >= self.max_clients {
                key = Key::Overflow;
            }
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else if rate > 0.0 {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate).max(Duration::from_secs(1)))
        } else {
            Err(Duration::from_secs(60))
        }
    }

    /// Clients currently remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Who the client is: the socket peer, or — when `trusted_proxy_hops` > 0
/// — the address that many entries from the right of `X-Forwarded-For`
/// (each trusted proxy appends the address it saw; entries further left
/// are written by the client and can be anything). `None` when neither is
/// known (no `ConnectInfo`, e.g. in a function runtime without a proxy
/// header): such requests share one bucket.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    trusted_proxy_hops: usize,
) -> Option<IpAddr> {
    if trusted_proxy_hops > 0 {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if hops.len() >= trusted_proxy_hops
            && let Some(ip) = parse_hop(hops[hops.len() - trusted_proxy_hops])
        {
            return Some(ip);
        }
    }
    peer.map(|ConnectInfo(addr)| addr.ip())
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let l = RateLimiter::new(
            RateLimit {
                burst: 3,
                per_minute: 60,
            },
            100,
        );
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(l.check(a, t0).is_ok());
        }
        let wait = l.check(a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // Another client is unaffected.
        assert!(l.check(ip("192.0.2.2"), t0).is_ok());
        // One second later, one token.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check(a, t1).is_ok());
        assert!(l.check(a, t1).is_err());
        // Long after, never more than the burst.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.check(a, t2).is_ok());
        }
        assert!(l.check(a, t2).is_err());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_slash_64() {
        let l = RateLimiter::new(
            RateLimit {
                burst: 1,
                per_minute: 1,
            },
            100,
        );
        let t = Instant::now();
        assert!(l.check(ip("2001:db8:1:2::1"), t).is_ok());
        assert!(l.check(ip("2001:db8:1:2::ffff"), t).is_err());
        assert!(l.check(ip("2001:db8:1:3::1"), t).is_ok());
        // v4-mapped v6 is the v4 client.
        assert!(l.check(ip("198.51.100.7"), t).is_ok());
        assert!(l.check(ip("::ffff:198.51.100.7"), t).is_err());
    }

    #[test]
    fn table_is_bounded() {
        let l = RateLimiter::new(
            RateLimit {
                burst: 2,
                per_minute: 60,
            },
            4,
        );
        let t = Instant::now();
        for i in 0..4 {
            assert!(l.check(ip(&format!("10.0.0.{i}")), t).is_ok());
        }
        // Full of active clients: newcomers share the overflow bucket.
        assert!(l.check(ip("10.0.1.1"), t).is_ok());
        assert!(l.check(ip("10.0.1.2"), t).is_ok());
        assert!(l.check(ip("10.0.1.3"), t).is_err());
        assert!(l.len() <= 5);
        // Once the old buckets have refilled they are dropped for newcomers.
        let later = t + Duration::from_secs(10);
        assert!(l.check(ip("10.0.2.1"), later).is_ok());
        assert!(l.check(ip("10.0.2.1"), later).is_ok());
        assert!(l.check(ip("10.0.2.1"), later).is_err());
        assert!(l.len() <= 4);
    }

    #[test]
    fn zero_burst_refuses() {
        let l = RateLimiter::new(
            RateLimit {
                burst: 0,
                per_minute: 10,
            },
            4,
        );
        assert!(l.check(ip("10.0.0.1"), Instant::now()).is_err());
    }

    #[test]
    fn client_ip_trusts_forwarded_for_only_as_configured() {
        let peer = ConnectInfo("127.0.0.1:5555".parse::<SocketAddr>().unwrap());
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        // Not trusted: the socket peer.
        assert_eq!(client_ip(&h, Some(&peer), 0), Some(ip("127.0.0.1")));
        // One proxy: the address it appended (the spoofed left entry is ignored).
        assert_eq!(client_ip(&h, Some(&peer), 1), Some(ip("203.0.113.9")));
        assert_eq!(client_ip(&h, Some(&peer), 2), Some(ip("6.6.6.6")));
        // Fewer hops than configured, or garbage: the peer.
        assert_eq!(client_ip(&h, Some(&peer), 3), Some(ip("127.0.0.1")));
        h.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(&h, Some(&peer), 1), Some(ip("127.0.0.1")));
        // Multiple headers count as one list; ports and brackets are fine.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1".parse().unwrap());
        h.append("x-forwarded-for", "[2001:db8::5]:443".parse().unwrap());
        assert_eq!(client_ip(&h, None, 1), Some(ip("2001:db8::5")));
        assert_eq!(client_ip(&HeaderMap::new(), None, 0), None);
    }
}

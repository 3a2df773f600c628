//! Token-bucket rate limits (per token, per client IP), the limit on challenges per client
//! network, and freebies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::request::Parts;
use ipnet::IpNet;
use l402::TokenId;
use l402_tower::{MintGuard, Rejection};
use regex::Regex;

use crate::client_ip::client_net;
use crate::config::{LimitKey, Rate};
use crate::route::ConnInfo;

/// Who a bucket belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Subject {
    Token(TokenId),
    Ip(IpAddr),
    Net(IpNet),
}

fn quota(rate: &Rate) -> Quota {
    let period = rate.per / rate.count;
    let period = if period.is_zero() {
        Duration::from_nanos(1)
    } else {
        period
    };
    Quota::with_period(period)
        .expect("a positive period")
        .allow_burst(NonZeroU32::new(rate.burst).expect("validated positive burst"))
}

/// A keyed token bucket.
pub(crate) struct Bucket {
    limiter: DefaultKeyedRateLimiter<Subject>,
}

impl Bucket {
    pub(crate) fn new(rate: &Rate) -> Self {
        Bucket {
            limiter: RateLimiter::keyed(quota(rate)),
        }
    }

    /// `Ok`, or how long to wait.
    pub(crate) fn check(&self, subject: &Subject) -> Result<(), Duration> {
        self.limiter
            .check_key(subject)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Drops buckets that are full again (idle subjects), bounding memory.
    pub(crate) fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// One configured rule of a service.
pub(crate) struct Rule {
    key: LimitKey,
    path: Option<Regex>,
    bucket: Bucket,
}

/// A service's rate limits.
#[derive(Default)]
pub(crate) struct ServiceLimits {
    rules: Vec<Rule>,
}

fn too_many(wait: Duration, reason: &str) -> Rejection {
    Rejection::TooManyRequests {
        retry_after: wait.max(Duration::from_secs(1)),
        reason: reason.into(),
    }
}

impl ServiceLimits {
    pub(crate) fn new(rules: &[crate::config::RateLimit]) -> Self {
        ServiceLimits {
            rules: rules
                .iter()
                .map(|r| Rule {
                    key: r.key,
                    path: r.path.clone(),
                    bucket: Bucket::new(&r.rate),
                })
                .collect(),
        }
    }

    fn applies(rule: &Rule, path: &str) -> bool {
        rule.path.as_ref().is_none_or(|p| p.is_match(path))
    }

    /// Per-IP rules, checked before anything else.
    pub(crate) fn check_ip(&self, path: &str, ip: IpAddr) -> Result<(), Rejection> {
        for rule in self
            .rules
            .iter()
            .filter(|r| r.key == LimitKey::Ip && Self::applies(r, path))
        {
            rule.bucket
                .check(&Subject::Ip(ip))
                .map_err(|w| too_many(w, "requests from this address"))?;
        }
        Ok(())
    }

    /// Per-token rules, checked once the token is known; requests without a token count per IP.
    pub(crate) fn check_token(
        &self,
        path: &str,
        token: Option<&TokenId>,
        ip: IpAddr,
    ) -> Result<(), Rejection> {
        let subject = match token {
            Some(t) => Subject::Token(*t),
            None => Subject::Ip(ip),
        };
        for rule in self
            .rules
            .iter()
            .filter(|r| r.key == LimitKey::Token && Self::applies(r, path))
        {
            rule.bucket
                .check(&subject)
                .map_err(|w| too_many(w, "requests for this token"))?;
        }
        Ok(())
    }

    pub(crate) fn shrink(&self) {
        for r in &self.rules {
            r.bucket.shrink();
        }
    }
}

/// Limits how many challenges one client network may mint (the guard Aperture lacks against
/// invoice spam).
pub(crate) struct ChallengeLimit {
    bucket: Bucket,
    v4_prefix: u8,
    v6_prefix: u8,
}

impl ChallengeLimit {
    pub(crate) fn new(rate: &Rate, v4_prefix: u8, v6_prefix: u8) -> Self {
        ChallengeLimit {
            bucket: Bucket::new(rate),
            v4_prefix,
            v6_prefix,
        }
    }

    pub(crate) fn shrink(&self) {
        self.bucket.shrink();
    }
}

impl MintGuard for ChallengeLimit {
    fn check(&self, request: &Parts) -> Result<(), Rejection> {
        let Some(ip) = request.extensions.get::<ConnInfo>().map(|c| c.client) else {
            return Ok(());
        };
        let net = client_net(ip, self.v4_prefix, self.v6_prefix);
        self.bucket
            .check(&Subject::Net(net))
            .map_err(|w| too_many(w, "challenges minted for this network"))
    }
}

/// Free requests per client network, per service, renewed every `window`.
pub(crate) struct Freebies {
    allowance: u32,
    window: Duration,
    counts: Mutex<HashMap<IpNet, (u32, Instant)>>,
    max_nets: usize,
}

/// The most client networks tracked at once. When the table is full, networks
/// whose window has ended are dropped; if every entry is still live, a new
/// network gets no freebie (it must pay) rather than growing the table.
const MAX_FREEBIE_NETS: usize = 100_000;

impl Freebies {
    pub(crate) fn new(allowance: u32, window: Duration) -> Self {
        Freebies {
            allowance,
            window,
            counts: Mutex::new(HashMap::new()),
            max_nets: MAX_FREEBIE_NETS,
        }
    }

    /// Takes one free request for `net` if any is left.
    pub(crate) fn take(&self, net: IpNet) -> bool {
        self.take_at(net, Instant::now())
    }

    /// [`Freebies::take`] at `now`.
    fn take_at(&self, net: IpNet, now: Instant) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= self.max_nets && !counts.contains_key(&net) {
            let window = self.window;
            counts.retain(|_, (_, start)| now.duration_since(*start) < window);
            if counts.len() >= self.max_nets {
                return false;
            }
        }
        let entry = counts.entry(net).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        if entry.0 < self.allowance {
            entry.0 += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let b = Bucket::new(&Rate {
            count: 1,
            per: Duration::from_secs(3600),
            burst: 3,
        });
        let s = Subject::Ip("1.2.3.4".parse().unwrap());
        for _ in 0..3 {
            assert!(b.check(&s).is_ok());
        }
        let wait = b.check(&s).unwrap_err();
        assert!(
            wait > Duration::from_secs(3000) && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );
        // Other subjects are unaffected.
        assert!(b.check(&Subject::Ip("1.2.3.5".parse().unwrap())).is_ok());
    }

    #[test]
    fn freebies_per_network_and_window() {
        let window = Duration::from_secs(60);
        let f = Freebies::new(2, window);
        let a: IpNet = "10.0.0.0/24".parse().unwrap();
        let b: IpNet = "10.0.1.0/24".parse().unwrap();
        let t0 = Instant::now();
        assert!(f.take_at(a, t0) && f.take_at(a, t0));
        assert!(!f.take_at(a, t0 + window / 2));
        assert!(f.take_at(b, t0));
        assert!(!f.take_at(a, t0 + window - Duration::from_millis(1)));
        assert!(f.take_at(a, t0 + window), "a new window");
    }

    #[test]
    fn full_freebie_table_refuses_new_networks_without_growing() {
        let window = Duration::from_secs(60);
        let mut f = Freebies::new(1, window);
        f.max_nets = 2;
        let nets: Vec<IpNet> = (0..3)
            .map(|i| format!("10.0.{i}.0/24").parse().unwrap())
            .collect();
        let t0 = Instant::now();
        assert!(f.take_at(nets[0], t0) && f.take_at(nets[1], t0));
        assert!(
            !f.take_at(nets[2], t0 + window / 2),
            "table full of live windows"
        );
        assert_eq!(f.counts.lock().unwrap().len(), 2);
        assert!(f.take_at(nets[2], t0 + window), "expired windows make room");
        assert!(f.counts.lock().unwrap().len() <= 2);
    }
}

//! The route table: services matched in order by host and path, each with its L402 policy,
//! limits, freebies and upstream. Immutable once built; a reload builds a new one and swaps it in
//! atomically, so requests in flight keep the table they started with.

use std::sync::Arc;
use std::time::Duration;

use http::Response;

use ipnet::IpNet;
use l402::{SharedIssuer, VerifiedToken};
use l402_store::Store;
use l402_tower::{Authority, OnInvalid, OnMissing, Policy, PriceBinding, Rejection};

use crate::config::{AuthLevel, Config, ServiceConfig};
use crate::handler::RequestMetrics;
use crate::limits::{ChallengeLimit, Freebies, ServiceLimits};
use crate::pricer::HttpPricer;
use crate::upstream::{Body, ForwardMeta, Upstream, local_response};

/// The authority every route uses: invoices from a backend chosen at run time, root keys in a
/// [`Store`].
pub type ProxyAuthority = Authority<SharedIssuer, Store>;

/// How long a client network's freebie allowance lasts.
const FREEBIE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Facts about the connection a request came on and its client, in the request's extensions
/// (one extension: each is a boxed allocation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnInfo {
    /// TLS (for `X-Forwarded-Proto`).
    pub(crate) tls: bool,
    /// The TCP peer (or the PROXY protocol source), appended to `X-Forwarded-For`.
    pub(crate) peer: std::net::IpAddr,
    /// The client: the peer, unless a trusted proxy named another (see [`crate::client_ip`]).
    pub(crate) client: std::net::IpAddr,
    /// The response goes to the proxy's own HTTP/1.1 lane, which takes an upstream's header
    /// fields as lines (see [`crate::h1::RawFields`]).
    pub(crate) raw_fields: bool,
}

/// What a request goes to once admitted: applies per-token limits and forwards.
#[derive(Clone)]
pub(crate) struct Forwarder {
    target: Arc<Target>,
}

struct Target {
    /// The service name, as the `X-L402-Service` value.
    name: http::HeaderValue,
    upstream: Upstream,
    limits: Arc<ServiceLimits>,
}

impl Forwarder {
    /// Applies the per-token limits to a request for `path` on `conn`, with the token it was
    /// verified with, if any: the rejection (429) to answer, or the upstream to forward it to
    /// and what to tell that upstream (`authorization`: the request's `Authorization` value
    /// when held apart from its headers, forwarded all the same; `grpc`: the request is gRPC,
    /// errors are answered its way). Not an `async fn`: the caller awaits the upstream's future
    /// itself, so that future is not moved through one more layer on every request.
    pub(crate) fn prepare<'a>(
        &'a self,
        path: &str,
        authorization: Option<&'a [u8]>,
        conn: ConnInfo,
        token: Option<&'a VerifiedToken>,
        grpc: bool,
    ) -> Result<(&'a Upstream, ForwardMeta<'a>), Rejection> {
        let target = &self.target;
        target
            .limits
            .check_token(path, token.map(|t| t.token_id()), conn.client)?;
        let meta = ForwardMeta {
            service: target.name.clone(),
            peer: conn.peer,
            tls: conn.tls,
            token,
            authorization,
            grpc,
            raw_fields: conn.raw_fields,
        };
        Ok((&target.upstream, meta))
    }
}

/// One service.
pub(crate) struct Route {
    pub(crate) config: ServiceConfig,
    pub(crate) metrics: RequestMetrics,
    base_policy: Policy,
    pub(crate) limits: Arc<ServiceLimits>,
    pub(crate) freebies: Option<Freebies>,
    /// Decides paid requests (verifies credentials, mints challenges).
    pub(crate) authority: ProxyAuthority,
    /// Applies per-token limits and forwards.
    pub(crate) forwarder: Forwarder,
}

/// What a request's route decided before L402.
pub(crate) enum Admission {
    /// Needs L402, with this path's own policy or (`None`) the service's.
    L402(Option<Policy>),
    /// Free (auth off, free path, or a freebie).
    Free,
}

impl Route {
    fn matches(&self, host: &str, path: &str) -> bool {
        self.config.host.as_ref().is_none_or(|r| r.is_match(host))
            && self.config.path.as_ref().is_none_or(|r| r.is_match(path))
    }

    /// The service's policy (paths without terms of their own).
    pub(crate) fn base_policy(&self) -> &Policy {
        &self.base_policy
    }

    /// The policy for a path when it differs from the service's:
    /// with per-path price, required capability or no-challenge behaviour.
    pub(crate) fn policy_for(&self, path: &str) -> Option<Policy> {
        let c = &self.config;
        if c.path_prices.is_empty()
            && c.capability_paths.is_empty()
            && c.no_challenge_paths.is_empty()
        {
            return None;
        }
        let mut p = self.base_policy.clone();
        if let Some((_, price)) = c.path_prices.iter().find(|(r, _)| r.is_match(path)) {
            p.price = *price;
            // A fixed path price overrides the pricer; the token is tied to what it cost.
            p.pricer = None;
            p.price_binding = PriceBinding::AtLeast;
        }
        if let Some((_, cap)) = c.capability_paths.iter().find(|(r, _)| r.is_match(path)) {
            p.required_capability = Some(cap.as_str().into());
        }
        if c.no_challenge_paths.iter().any(|r| r.is_match(path)) {
            p.on_missing = OnMissing::Unauthorized;
        }
        Some(p)
    }

    /// Decides free or paid for a request from `net` whose credential headers are `missing`.
    pub(crate) fn admit(&self, path: &str, net: IpNet, credential_missing: bool) -> Admission {
        let c = &self.config;
        if c.free_paths.iter().any(|r| r.is_match(path)) {
            return Admission::Free;
        }
        match c.auth {
            AuthLevel::Off => Admission::Free,
            AuthLevel::On => Admission::L402(self.policy_for(path)),
            AuthLevel::Freebie(_) => {
                let free =
                    credential_missing && self.freebies.as_ref().is_some_and(|f| f.take(net));
                if free {
                    Admission::Free
                } else {
                    Admission::L402(self.policy_for(path))
                }
            }
        }
    }
}

/// All routes, in match order, plus what the whole proxy shares.
pub(crate) struct RouteTable {
    pub(crate) routes: Vec<Arc<Route>>,
    /// Metrics of requests refused before a service matched.
    pub(crate) unrouted_metrics: RequestMetrics,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) forwarding_header: crate::client_ip::ForwardingHeader,
    pub(crate) blocklist: Vec<IpNet>,
    pub(crate) ipv4_prefix: u8,
    pub(crate) ipv6_prefix: u8,
    challenge_limit: Option<Arc<ChallengeLimit>>,
}

impl RouteTable {
    /// Builds the table for `config` (compiling upstream clients and pricers).
    pub(crate) fn build(config: &Config, authority: &ProxyAuthority) -> Result<RouteTable, String> {
        let challenge_limit = config.challenges_per_ip.as_ref().map(|r| {
            Arc::new(ChallengeLimit::new(
                r,
                config.ipv4_prefix,
                config.ipv6_prefix,
            ))
        });
        let mut routes = Vec::with_capacity(config.services.len());
        for s in &config.services {
            let limits = Arc::new(ServiceLimits::new(&s.rate_limits));
            let upstream = Upstream::new(s).map_err(|e| format!("service {}: {e}", s.name))?;
            let mut policy = Policy::new(s.name.clone(), s.price).tier(s.tier);
            if let Some(caps) = &s.capabilities {
                policy = policy.capabilities(caps.iter().cloned());
            }
            policy = policy.constraints(s.constraints.iter().cloned());
            if let Some(l) = s.token_lifetime {
                policy = policy.token_lifetime(l);
            }
            if config.challenge.invalid_is_challenge {
                policy = policy.on_invalid(OnInvalid::Challenge);
            }
            // With several prices in one service, a token is tied to what it cost: to its price
            // (per-path prices) or to its path (a pricer's prices are known only at mint time).
            if s.pricer.is_some() {
                policy = policy.price_binding(PriceBinding::Path);
            } else if !s.path_prices.is_empty() {
                policy = policy.price_binding(PriceBinding::AtLeast);
            }
            if let Some(url) = &s.pricer {
                let pricer = HttpPricer::new(url.clone(), s.name.clone())
                    .map_err(|e| format!("service {}: {e}", s.name))?;
                policy = policy.pricer(Arc::new(pricer));
            }
            if let Some(guard) = &challenge_limit {
                policy = policy.mint_guard(guard.clone());
            }
            let forwarder = Forwarder {
                target: Arc::new(Target {
                    name: http::HeaderValue::from_str(&s.name)
                        .map_err(|_| format!("service {:?}: not a valid header value", s.name))?,
                    upstream,
                    limits: limits.clone(),
                }),
            };
            let freebies = match s.auth {
                AuthLevel::Freebie(n) => Some(Freebies::new(n, FREEBIE_WINDOW)),
                _ => None,
            };
            routes.push(Arc::new(Route {
                metrics: RequestMetrics::new(&s.name),
                config: s.clone(),
                authority: authority.clone(),
                forwarder,
                base_policy: policy,
                limits,
                freebies,
            }));
        }
        Ok(RouteTable {
            routes,
            unrouted_metrics: RequestMetrics::new("-"),
            trusted_proxies: config.trusted_proxies.clone(),
            forwarding_header: config.forwarding_header,
            blocklist: config.blocklist.clone(),
            ipv4_prefix: config.ipv4_prefix,
            ipv6_prefix: config.ipv6_prefix,
            challenge_limit,
        })
    }

    /// The first route matching host and path.
    pub(crate) fn route(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.matches(host, path))
    }

    /// Forgets idle rate-limit buckets.
    pub(crate) fn shrink(&self) {
        for r in &self.routes {
            r.limits.shrink();
        }
        if let Some(c) = &self.challenge_limit {
            c.shrink();
        }
    }
}

/// A 404 for requests no service matches.
pub(crate) fn no_route(grpc: bool) -> Response<Body> {
    local_response(
        http::StatusCode::NOT_FOUND,
        "no service matches this host and path",
        grpc,
    )
}

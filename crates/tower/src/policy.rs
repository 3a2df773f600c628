//! The terms of one request: which service, what it costs, what a token grants and requires.
//!
//! A [`Policy`] is set once for an [`L402Layer`](crate::L402Layer), or per request by putting one
//! in the request's extensions before the layer runs (the proxy does this after routing).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use l402::{Caveat, CaveatError, ExactValue, Msat, Satisfier};

use crate::Rejection;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Prices a request at the moment a challenge is minted (never for requests that carry a valid
/// credential). Zero lets the request through free. An error answers 503: a challenge is never
/// minted at a price that could not be determined.
pub trait Pricer: Send + Sync {
    /// The price of a token for this request.
    fn price<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Result<Msat, String>>;
}

/// Decides whether a challenge may be minted for this request (for example, a limit on how
/// many challenges one client IP may mint). A refusal is answered as is (typically 429).
pub trait MintGuard: Send + Sync {
    /// `Ok` to mint, or the rejection to answer with.
    fn check(&self, request: &Parts) -> Result<(), Rejection>;
}

/// What to answer when a request carries no credential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnMissing {
    /// Mint a challenge: 402 with an invoice (the normal case).
    #[default]
    Challenge,
    /// 401 without minting (for paths where a challenge cannot be used, e.g. server streams;
    /// Aperture's `authskipinvoicecreationpaths`).
    Unauthorized,
}

/// What to answer when a credential is present but invalid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnInvalid {
    /// 401, as the bLIP and the L402 spec say.
    #[default]
    Unauthorized,
    /// A fresh 402 challenge, as Aperture does (for clients that expect it).
    Challenge,
}

/// How a token is tied to what was paid for it, when prices differ within one service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PriceBinding {
    /// Not tied: any token of the service opens every path (one price per service).
    #[default]
    None,
    /// The price paid is minted (`<service>_price_msat=N`) and a request passes only if it
    /// costs at most that (per-path prices).
    AtLeast,
    /// The path is minted (`<service>_path=/x`) and the token opens that path only (prices
    /// from a pricer, which are only known at mint time).
    Path,
}

/// The condition of the price binding caveat of `service`.
pub fn price_condition(service: &str) -> String {
    format!("{service}_price_msat")
}

/// The condition of the path binding caveat of `service`.
pub fn path_condition(service: &str) -> String {
    format!("{service}_path")
}

/// The terms of a request.
#[derive(Clone)]
pub struct Policy {
    /// The service name (in the `services` caveat, and the prefix of its other caveats).
    pub service: Arc<str>,
    /// The tier minted into the `services` caveat.
    pub tier: u8,
    /// The price of a token. Zero means the request is free (no credential needed).
    pub price: Msat,
    /// Capabilities minted into `<service>_capabilities` (`None`: no caveat, unrestricted).
    pub capabilities: Option<Arc<[String]>>,
    /// Extra `condition=value` caveats minted into every token and enforced on every request:
    /// a repeat must carry the same value, and the last must equal the configured value.
    pub constraints: Arc<[(String, String)]>,
    /// How long a token works after minting (`<service>_valid_until`); `None`: forever.
    pub token_lifetime: Option<Duration>,
    /// The capability this request needs, if any.
    pub required_capability: Option<Arc<str>>,
    /// Answer to a request without a credential.
    pub on_missing: OnMissing,
    /// Answer to an invalid credential.
    pub on_invalid: OnInvalid,
    /// Custom satisfiers for conditions of your own.
    pub satisfiers: Arc<[Arc<dyn Satisfier>]>,
    /// Prices requests dynamically at mint time (replaces `price` when set).
    pub pricer: Option<Arc<dyn Pricer>>,
    /// Consulted before every mint.
    pub mint_guard: Option<Arc<dyn MintGuard>>,
    /// How tokens are tied to their price.
    pub price_binding: PriceBinding,
}

impl Policy {
    /// A policy for `service` at `price`, base tier, no capabilities, tokens that never expire.
    pub fn new(service: impl Into<Arc<str>>, price: Msat) -> Self {
        Policy {
            service: service.into(),
            tier: 0,
            price,
            capabilities: None,
            constraints: Arc::new([]),
            token_lifetime: None,
            required_capability: None,
            on_missing: OnMissing::Challenge,
            on_invalid: OnInvalid::Unauthorized,
            satisfiers: Arc::new([]),
            pricer: None,
            mint_guard: None,
            price_binding: PriceBinding::None,
        }
    }

    /// Ties tokens to their price.
    #[must_use]
    pub fn price_binding(mut self, binding: PriceBinding) -> Self {
        self.price_binding = binding;
        self
    }

    /// Whether every request passes without a credential (a fixed price of zero).
    pub fn is_free(&self) -> bool {
        self.price == Msat::ZERO && self.pricer.is_none()
    }

    /// Prices requests dynamically.
    #[must_use]
    pub fn pricer(mut self, pricer: Arc<dyn Pricer>) -> Self {
        self.pricer = Some(pricer);
        self
    }

    /// Guards minting.
    #[must_use]
    pub fn mint_guard(mut self, guard: Arc<dyn MintGuard>) -> Self {
        self.mint_guard = Some(guard);
        self
    }

    /// Sets the tier.
    #[must_use]
    pub fn tier(mut self, tier: u8) -> Self {
        self.tier = tier;
        self
    }

    /// Sets the capabilities minted into tokens.
    #[must_use]
    pub fn capabilities<I: IntoIterator<Item = S>, S: Into<String>>(mut self, caps: I) -> Self {
        self.capabilities = Some(caps.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the token lifetime.
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = Some(lifetime);
        self
    }

    /// Sets constraint caveats (`condition=value`).
    #[must_use]
    pub fn constraints<I: IntoIterator<Item = (String, String)>>(mut self, c: I) -> Self {
        self.constraints = c.into_iter().collect();
        self
    }

    /// Requires a capability.
    #[must_use]
    pub fn require_capability(mut self, cap: impl Into<Arc<str>>) -> Self {
        self.required_capability = Some(cap.into());
        self
    }

    /// Sets the answer to an invalid credential.
    #[must_use]
    pub fn on_invalid(mut self, on_invalid: OnInvalid) -> Self {
        self.on_invalid = on_invalid;
        self
    }

    /// Sets the answer to a missing credential.
    #[must_use]
    pub fn on_missing(mut self, on_missing: OnMissing) -> Self {
        self.on_missing = on_missing;
        self
    }

    /// The caveats minted into a token issued at `now` (unix seconds) for `price` on `path`, in
    /// Aperture's order, then the price binding.
    pub fn caveats(&self, now: i64, price: Msat, path: &str) -> Result<Vec<Caveat>, l402::Error> {
        let mut spec = l402::TokenSpec::new(self.service.to_string(), self.tier);
        if let Some(caps) = &self.capabilities {
            spec = spec.capabilities(caps.iter().cloned());
        }
        for (k, v) in self.constraints.iter() {
            spec = spec.constraint(k.clone(), v.clone());
        }
        if let Some(l) = self.token_lifetime {
            spec = spec.valid_until(now.saturating_add(l.as_secs() as i64));
        }
        let mut caveats = spec.caveats()?;
        match self.price_binding {
            PriceBinding::None => {}
            PriceBinding::AtLeast => caveats.push(Caveat::new(
                price_condition(&self.service),
                price.to_string(),
            )?),
            PriceBinding::Path => caveats.push(Caveat::new(path_condition(&self.service), path)?),
        }
        Ok(caveats)
    }

    /// The price binding verification requires (its condition and the satisfier that checks it),
    /// for a request on `path`; constraints are checked by the verifier itself.
    pub(crate) fn bindings(&self, path: &str) -> Vec<(String, Arc<dyn Satisfier>)> {
        let mut out: Vec<(String, Arc<dyn Satisfier>)> = Vec::new();
        match self.price_binding {
            PriceBinding::None => {}
            PriceBinding::AtLeast => {
                let condition = price_condition(&self.service);
                out.push((
                    condition.clone(),
                    Arc::new(PaidAtLeast {
                        condition,
                        required: self.price,
                    }),
                ));
            }
            PriceBinding::Path => {
                let condition = path_condition(&self.service);
                out.push((
                    condition.clone(),
                    // It may not change, and must name the requested path: a token bought
                    // for one path does not open another.
                    Arc::new(ExactValue::new(condition, path)),
                ));
            }
        }
        out
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("service", &self.service)
            .field("tier", &self.tier)
            .field("price", &self.price)
            .field("capabilities", &self.capabilities)
            .field("constraints", &self.constraints)
            .field("token_lifetime", &self.token_lifetime)
            .field("required_capability", &self.required_capability)
            .field("on_missing", &self.on_missing)
            .field("on_invalid", &self.on_invalid)
            .field("satisfiers", &self.satisfiers.len())
            .field("pricer", &self.pricer.is_some())
            .field("mint_guard", &self.mint_guard.is_some())
            .finish()
    }
}

/// Enforces a price binding: the token was bought for at least what this request costs, and
/// appended copies may only lower it.
struct PaidAtLeast {
    condition: String,
    required: Msat,
}

impl PaidAtLeast {
    fn parse(&self, v: &str) -> Result<Msat, CaveatError> {
        v.parse::<Msat>().map_err(|_| CaveatError::Malformed {
            caveat: format!("{}={v}", self.condition),
            reason: "expected a millisatoshi amount".into(),
        })
    }
}

impl Satisfier for PaidAtLeast {
    fn condition(&self) -> &str {
        &self.condition
    }

    fn satisfy_previous(&self, previous: &str, current: &str) -> Result<(), CaveatError> {
        if self.parse(current)? <= self.parse(previous)? {
            Ok(())
        } else {
            Err(CaveatError::NotNarrowing {
                condition: self.condition.clone(),
                previous: previous.into(),
                current: current.into(),
            })
        }
    }

    fn satisfy_final(&self, value: &str) -> Result<(), CaveatError> {
        let paid = self.parse(value)?;
        if paid >= self.required {
            Ok(())
        } else {
            Err(CaveatError::Refused {
                condition: self.condition.clone(),
                reason: format!(
                    "the token was bought for {paid} msat; this resource costs {} msat",
                    self.required
                ),
            })
        }
    }
}

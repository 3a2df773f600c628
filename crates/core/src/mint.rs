//! Minting: a fresh macaroon bound to a payment hash, with the caveats a service grants.

use l402_macaroon::Macaroon;

use crate::{Caveat, Error, Identifier, RootKey, Service};

/// The location Aperture writes into every L402 macaroon.
pub const DEFAULT_LOCATION: &str = "lsat";

/// Mints a macaroon: identifier, location, then `caveats` in order, signed with `root_key`.
///
/// Pure: the caller supplies the root key (fresh and random for each macaroon, stored under
/// [`Identifier::key_id`] before the challenge leaves) and the identifier (the invoice's payment
/// hash and a random [`TokenId`](crate::TokenId)).
///
/// ```
/// use l402::{Identifier, PaymentHash, RootKey, TokenId, mint, DEFAULT_LOCATION};
///
/// let key = RootKey::generate();
/// let id = Identifier::new(PaymentHash::from_bytes([1; 32]), TokenId::random());
/// let m = mint(&key, &id, DEFAULT_LOCATION, &[]);
/// assert_eq!(m.identifier(), &id.encode()[..]);
/// assert!(m.verify_signature(key.as_bytes()).is_ok());
/// ```
pub fn mint(
    root_key: &RootKey,
    identifier: &Identifier,
    location: &str,
    caveats: &[Caveat],
) -> Macaroon {
    let mut m = Macaroon::new(root_key.as_bytes(), identifier.encode().to_vec(), location);
    for c in caveats {
        m.add_first_party_caveat(c.to_string());
    }
    m
}

/// What a token grants, turned into caveats in Aperture's order: services, capabilities,
/// constraints, expiry.
///
/// ```
/// use l402::TokenSpec;
/// let caveats = TokenSpec::new("weather", 0)
///     .capabilities(["forecast", "history"])
///     .valid_until(1893456000)
///     .caveats()
///     .unwrap();
/// let text: Vec<String> = caveats.iter().map(|c| c.to_string()).collect();
/// assert_eq!(
///     text,
///     [
///         "services=weather:0",
///         "weather_capabilities=forecast,history",
///         "weather_valid_until=1893456000",
///     ]
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenSpec {
    services: Vec<Service>,
    capabilities: Option<Vec<String>>,
    constraints: Vec<(String, String)>,
    valid_until: Option<i64>,
}

impl TokenSpec {
    /// A token for one service at the given tier.
    pub fn new(service: impl Into<String>, tier: u8) -> Self {
        TokenSpec {
            services: vec![Service::new(service, tier)],
            ..TokenSpec::default()
        }
    }

    /// Grants these capabilities of the (first) service; an empty list mints
    /// `<service>_capabilities=` as Aperture does.
    #[must_use]
    pub fn capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities = Some(capabilities.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a `condition=value` constraint caveat (for a custom satisfier to check).
    #[must_use]
    pub fn constraint(mut self, condition: impl Into<String>, value: impl Into<String>) -> Self {
        self.constraints.push((condition.into(), value.into()));
        self
    }

    /// Makes the token expire at `unix_seconds` for the (first) service.
    #[must_use]
    pub fn valid_until(mut self, unix_seconds: i64) -> Self {
        self.valid_until = Some(unix_seconds);
        self
    }

    /// The caveats, in Aperture's order.
    pub fn caveats(&self) -> Result<Vec<Caveat>, Error> {
        let mut out = vec![Caveat::services(&self.services)?];
        let first = &self.services[0].name;
        if let Some(caps) = &self.capabilities {
            out.push(Caveat::capabilities(first, caps));
        }
        for (k, v) in &self.constraints {
            out.push(Caveat::new(k.clone(), v.clone())?);
        }
        if let Some(t) = self.valid_until {
            out.push(Caveat::valid_until(first, t));
        }
        Ok(out)
    }
}

//! Caveats (`condition=value` restrictions) and the satisfiers that check them.
//!
//! A caveat's bytes are `condition=value`, split at the **first** `=`, with no trimming (so
//! `services = x` is the unknown condition `"services "`). The well-known conditions are
//!
//! * `services=name:tier[,name:tier…]` — which services the token may be used for;
//! * `<service>_capabilities=a,b` — which capabilities of that service;
//! * `<service>_valid_until=<unix seconds>` — when the token stops working for that service;
//! * `preimage=<hex>` — added by clients that send the preimage inside the macaroon (gRPC).
//!
//! Caveats with the same condition are checked as a group, in macaroon order: each one must be
//! at least as strict as the one before it ([`Satisfier::satisfy_previous`]), so appending caveats
//! can only narrow a token, and the last one must hold for the request
//! ([`Satisfier::satisfy_final`]).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Condition of the services caveat.
pub const SERVICES: &str = "services";
/// Suffix of the per-service capabilities condition.
pub const CAPABILITIES_SUFFIX: &str = "_capabilities";
/// Suffix of the per-service expiry condition.
pub const VALID_UNTIL_SUFFIX: &str = "_valid_until";
/// Condition of the preimage caveat some clients append (hex header and gRPC forms).
pub const PREIMAGE: &str = "preimage";

/// A first-party caveat in L402's `condition=value` form.
///
/// ```
/// use l402::Caveat;
/// let c: Caveat = "expiration=1337=".parse().unwrap();
/// assert_eq!(c.condition(), "expiration");
/// assert_eq!(c.value(), "1337=");
/// assert!("expiration:1337".parse::<Caveat>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Caveat {
    condition: String,
    value: String,
}

impl Caveat {
    /// A caveat from its two halves. The condition must not contain `=`.
    pub fn new(condition: impl Into<String>, value: impl Into<String>) -> Result<Self, Error> {
        let condition = condition.into();
        if condition.contains('=') {
            return Err(Error::InvalidCaveat {
                caveat: condition,
                reason: "the condition must not contain '='".into(),
            });
        }
        Ok(Caveat {
            condition,
            value: value.into(),
        })
    }

    /// `services=name:tier,…`.
    pub fn services(services: &[Service]) -> Result<Self, Error> {
        if services.is_empty() {
            return Err(Error::InvalidCaveat {
                caveat: SERVICES.into(),
                reason: "at least one service is required".into(),
            });
        }
        let value = services
            .iter()
            .map(Service::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Caveat {
            condition: SERVICES.into(),
            value,
        })
    }

    /// `<service>_capabilities=a,b,…` (an empty list is allowed, as Aperture mints it).
    pub fn capabilities<S: AsRef<str>>(service: &str, capabilities: &[S]) -> Self {
        let value = capabilities
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",");
        Caveat {
            condition: format!("{service}{CAPABILITIES_SUFFIX}"),
            value,
        }
    }

    /// `<service>_valid_until=<unix seconds>`.
    pub fn valid_until(service: &str, unix_seconds: i64) -> Self {
        Caveat {
            condition: format!("{service}{VALID_UNTIL_SUFFIX}"),
            value: unix_seconds.to_string(),
        }
    }

    /// Parses the bytes of a first-party caveat id.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::InvalidCaveat {
            caveat: String::from_utf8_lossy(bytes).into_owned(),
            reason: "not valid UTF-8".into(),
        })?;
        text.parse()
    }

    /// The condition (left of the first `=`).
    pub fn condition(&self) -> &str {
        &self.condition
    }

    /// The value (right of the first `=`).
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Caveat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.condition, self.value)
    }
}

impl FromStr for Caveat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.split_once('=') {
            Some((condition, value)) => Ok(Caveat {
                condition: condition.into(),
                value: value.into(),
            }),
            None => Err(Error::InvalidCaveat {
                caveat: s.into(),
                reason: "caveat must be of the form \"condition=value\"".into(),
            }),
        }
    }
}

/// One entry of a `services` caveat: a service name and its tier.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Service {
    /// The service name, as configured on the server.
    pub name: String,
    /// The tier (0 is the base tier).
    pub tier: u8,
}

impl Service {
    /// A service at the given tier.
    pub fn new(name: impl Into<String>, tier: u8) -> Self {
        Service {
            name: name.into(),
            tier,
        }
    }

    /// Parses a `services` caveat value: `name:tier[,name:tier…]`, at least one entry, every name
    /// non-empty, every tier a decimal number from 0 to 255.
    pub fn parse_list(value: &str) -> Result<Vec<Service>, CaveatError> {
        let malformed = |reason: String| CaveatError::Malformed {
            caveat: format!("{SERVICES}={value}"),
            reason,
        };
        if value.is_empty() {
            return Err(malformed("no services listed".into()));
        }
        value
            .split(',')
            .map(|entry| {
                let (name, tier) = entry.split_once(':').ok_or_else(|| {
                    malformed(format!(
                        "service {entry:?} must be of the form \"name:tier\""
                    ))
                })?;
                if name.is_empty() {
                    return Err(malformed(format!("service {entry:?} has an empty name")));
                }
                let tier = tier
                    .parse::<u8>()
                    .ok()
                    .filter(|_| tier.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        malformed(format!("service {entry:?} has a tier that is not 0-255"))
                    })?;
                Ok(Service::new(name, tier))
            })
            .collect()
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tier)
    }
}

/// Why a caveat did not hold.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum CaveatError {
    /// The caveat could not be parsed.
    Malformed {
        /// The whole caveat, `condition=value`.
        caveat: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A repeated caveat is less strict than the one before it (an attempt to widen the token).
    NotNarrowing {
        /// The condition.
        condition: String,
        /// The earlier value.
        previous: String,
        /// The later, wider value.
        current: String,
    },
    /// The token is not valid for the requested service.
    ServiceNotAuthorized {
        /// The requested service.
        service: String,
    },
    /// The token does not grant the requested capability.
    CapabilityNotAuthorized {
        /// The service.
        service: String,
        /// The requested capability.
        capability: String,
    },
    /// The token has expired for this service.
    Expired {
        /// The condition that expired (`<service>_valid_until`).
        condition: String,
        /// Its value, unix seconds.
        valid_until: i64,
        /// The verifier's clock, unix seconds.
        now: i64,
    },
    /// A `preimage` caveat does not hash to the identifier's payment hash.
    PreimageMismatch,
    /// A caveat nobody knows how to check, refused because the verifier is strict.
    Unknown {
        /// The whole caveat.
        caveat: String,
    },
    /// A caveat the verifier requires is absent from the token.
    Missing {
        /// The condition that must be present.
        condition: String,
    },
    /// A custom satisfier refused the caveat.
    Refused {
        /// The condition.
        condition: String,
        /// The satisfier's reason.
        reason: String,
    },
}

impl fmt::Display for CaveatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaveatError::Malformed { caveat, reason } => {
                write!(f, "malformed caveat {caveat:?}: {reason}")
            }
            CaveatError::NotNarrowing {
                condition,
                previous,
                current,
            } => write!(
                f,
                "caveat {condition:?} widens the token: {current:?} is less strict than the earlier {previous:?}"
            ),
            CaveatError::ServiceNotAuthorized { service } => {
                write!(f, "token is not valid for service {service:?}")
            }
            CaveatError::CapabilityNotAuthorized {
                service,
                capability,
            } => write!(
                f,
                "token does not grant capability {capability:?} of service {service:?}"
            ),
            CaveatError::Expired {
                condition,
                valid_until,
                now,
            } => write!(
                f,
                "token expired: {condition}={valid_until} is not after the current time {now}"
            ),
            CaveatError::PreimageMismatch => {
                f.write_str("a preimage caveat does not match the token's payment hash")
            }
            CaveatError::Unknown { caveat } => {
                write!(f, "unknown caveat {caveat:?} refused (strict verification)")
            }
            CaveatError::Missing { condition } => {
                write!(
                    f,
                    "the token has no {condition:?} caveat, which this resource requires"
                )
            }
            CaveatError::Refused { condition, reason } => {
                write!(f, "caveat {condition:?} not satisfied: {reason}")
            }
        }
    }
}

impl std::error::Error for CaveatError {}

/// Checks one caveat condition. Register custom satisfiers on a
/// [`Verifier`](crate::Verifier) to enforce conditions this crate does not know.
///
/// ```
/// use l402::{CaveatError, Satisfier};
///
/// /// `region=eu,us`: later caveats may only drop regions; the request's region must be listed.
/// struct Region(&'static str);
///
/// impl Satisfier for Region {
///     fn condition(&self) -> &str {
///         "region"
///     }
///     fn satisfy_previous(&self, previous: &str, current: &str) -> Result<(), CaveatError> {
///         if current.split(',').all(|r| previous.split(',').any(|p| p == r)) {
///             Ok(())
///         } else {
///             Err(CaveatError::NotNarrowing {
///                 condition: "region".into(),
///                 previous: previous.into(),
///                 current: current.into(),
///             })
///         }
///     }
///     fn satisfy_final(&self, value: &str) -> Result<(), CaveatError> {
///         if value.split(',').any(|r| r == self.0) {
///             Ok(())
///         } else {
///             Err(CaveatError::Refused { condition: "region".into(), reason: format!("not in {}", self.0) })
///         }
///     }
/// }
/// ```
pub trait Satisfier: Send + Sync {
    /// The exact condition this satisfier checks.
    fn condition(&self) -> &str;

    /// Checks that `current` is at least as strict as `previous` (both values of this condition,
    /// `previous` earlier in the macaroon).
    fn satisfy_previous(&self, previous: &str, current: &str) -> Result<(), CaveatError>;

    /// Checks the last value of this condition against the request.
    fn satisfy_final(&self, value: &str) -> Result<(), CaveatError>;
}

// === built-in checks ===

pub(crate) fn services_previous(previous: &str, current: &str) -> Result<(), CaveatError> {
    let prev = Service::parse_list(previous)?;
    let cur = Service::parse_list(current)?;
    if prev.len() > MAX_LIST_ENTRIES || cur.len() > MAX_LIST_ENTRIES {
        return Err(too_long(SERVICES));
    }
    let prev: std::collections::HashSet<(&str, u8)> =
        prev.iter().map(|p| (p.name.as_str(), p.tier)).collect();
    // Every service must have been allowed before, at the same tier. (Aperture compares names
    // only; lsat-js treats a higher tier as narrower. Requiring equality is safe under both
    // readings of what a tier means.)
    let narrowing = cur
        .iter()
        .all(|c| prev.contains(&(c.name.as_str(), c.tier)));
    if narrowing {
        Ok(())
    } else {
        Err(not_narrowing(SERVICES, previous, current))
    }
}

pub(crate) fn services_final(
    value: &str,
    target: Option<&str>,
) -> Result<Vec<Service>, CaveatError> {
    let list = Service::parse_list(value)?;
    if let Some(target) = target.filter(|t| !list.iter().any(|s| s.name == *t)) {
        return Err(CaveatError::ServiceNotAuthorized {
            service: target.into(),
        });
    }
    Ok(list)
}

/// Most entries a `services` or `_capabilities` list may hold: far above real use, small enough
/// that checking a hostile token stays cheap.
pub const MAX_LIST_ENTRIES: usize = 256;

fn too_long(condition: &str) -> CaveatError {
    CaveatError::Malformed {
        caveat: condition.into(),
        reason: format!("more than {MAX_LIST_ENTRIES} entries"),
    }
}

pub(crate) fn capabilities_previous(
    condition: &str,
    previous: &str,
    current: &str,
) -> Result<(), CaveatError> {
    let prev: std::collections::HashSet<&str> = capability_list(previous).collect();
    if prev.len() > MAX_LIST_ENTRIES || capability_list(current).nth(MAX_LIST_ENTRIES).is_some() {
        return Err(too_long(condition));
    }
    let narrowing = capability_list(current).all(|c| prev.contains(c));
    if narrowing {
        Ok(())
    } else {
        Err(not_narrowing(condition, previous, current))
    }
}

pub(crate) fn capabilities_final(
    service: &str,
    value: &str,
    target: Option<&str>,
) -> Result<(), CaveatError> {
    match target {
        Some(cap) if !capability_list(value).any(|c| c == cap) => {
            Err(CaveatError::CapabilityNotAuthorized {
                service: service.into(),
                capability: cap.into(),
            })
        }
        _ => Ok(()),
    }
}

/// The entries of a capabilities value; an empty value is the empty list (Aperture mints
/// `<service>_capabilities=` when none are configured).
fn capability_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').filter(|c| !c.is_empty())
}

fn parse_unix(condition: &str, value: &str) -> Result<i64, CaveatError> {
    value.parse::<i64>().map_err(|_| CaveatError::Malformed {
        caveat: format!("{condition}={value}"),
        reason: "expected unix seconds as a decimal integer".into(),
    })
}

pub(crate) fn valid_until_previous(
    condition: &str,
    previous: &str,
    current: &str,
) -> Result<(), CaveatError> {
    let prev = parse_unix(condition, previous)?;
    let cur = parse_unix(condition, current)?;
    if cur <= prev {
        Ok(())
    } else {
        Err(not_narrowing(condition, previous, current))
    }
}

pub(crate) fn valid_until_final(
    condition: &str,
    value: &str,
    now: i64,
) -> Result<i64, CaveatError> {
    let valid_until = parse_unix(condition, value)?;
    if now < valid_until {
        Ok(valid_until)
    } else {
        Err(CaveatError::Expired {
            condition: condition.into(),
            valid_until,
            now,
        })
    }
}

/// A satisfier for a condition with one fixed value (a server's constraint, or a per-request
/// binding such as the path a token was bought for): a repeated caveat must carry the value
/// before it, and the last must equal `value`. The same rule the [`Verifier`](crate::Verifier)
/// applies to its [`constraints`](crate::Verifier::constraints).
#[derive(Debug, Clone)]
pub struct ExactValue {
    condition: String,
    value: String,
}

impl ExactValue {
    /// `condition` must be `value`.
    pub fn new(condition: impl Into<String>, value: impl Into<String>) -> Self {
        ExactValue {
            condition: condition.into(),
            value: value.into(),
        }
    }
}

impl Satisfier for ExactValue {
    fn condition(&self) -> &str {
        &self.condition
    }

    fn satisfy_previous(&self, previous: &str, current: &str) -> Result<(), CaveatError> {
        constraint_previous(&self.condition, previous, current)
    }

    fn satisfy_final(&self, value: &str) -> Result<(), CaveatError> {
        constraint_final(&self.condition, &self.value, value)
    }
}

/// A constraint may not change once minted: a repeat must carry the value before it.
pub(crate) fn constraint_previous(
    condition: &str,
    previous: &str,
    current: &str,
) -> Result<(), CaveatError> {
    if previous == current {
        Ok(())
    } else {
        Err(not_narrowing(condition, previous, current))
    }
}

/// A constraint's last value must be the configured one (a token minted under other terms does
/// not pass).
pub(crate) fn constraint_final(
    condition: &str,
    expected: &str,
    value: &str,
) -> Result<(), CaveatError> {
    if value == expected {
        Ok(())
    } else {
        Err(CaveatError::Refused {
            condition: condition.into(),
            reason: format!("expected {expected:?}, token has {value:?}"),
        })
    }
}

fn not_narrowing(condition: &str, previous: &str, current: &str) -> CaveatError {
    CaveatError::NotNarrowing {
        condition: condition.into(),
        previous: previous.into(),
        current: current.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caveat_split_at_first_equals_without_trimming() {
        let c: Caveat = "services = lightning_loop:0".parse().unwrap();
        assert_eq!(c.condition(), "services ");
        assert_eq!(c.value(), " lightning_loop:0");
        assert_eq!(c.to_string(), "services = lightning_loop:0");
    }

    #[test]
    fn aperture_service_table() {
        assert_eq!(
            Service::parse_list("a:0").unwrap(),
            vec![Service::new("a", 0)]
        );
        assert_eq!(Service::parse_list("a:0,b:1,c:0").unwrap().len(), 3);
        for bad in [
            "", ":0", "a", "a:", "a:b", ",,", "a:256", "a:-1", "a:+1", "a:0:1",
        ] {
            assert!(Service::parse_list(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn aperture_timeout_table() {
        let c = "svc_valid_until";
        assert!(valid_until_final(c, "1000", 0).is_ok());
        assert!(valid_until_final(c, "-1000", 0).is_err());
        assert!(
            valid_until_final(c, "1000", 1000).is_err(),
            "expiry is strict"
        );
        assert!(valid_until_previous(c, "1000", "500").is_ok());
        assert!(valid_until_previous(c, "500", "1000").is_err());
        assert!(valid_until_previous(c, "500", "500").is_ok());
    }

    #[test]
    fn capabilities_narrow() {
        let c = "svc_capabilities";
        assert!(capabilities_previous(c, "a,b", "a").is_ok());
        assert!(capabilities_previous(c, "a", "a,b").is_err());
        assert!(capabilities_final("svc", "a,b", Some("b")).is_ok());
        assert!(capabilities_final("svc", "a,b", Some("c")).is_err());
        assert!(capabilities_final("svc", "", Some("c")).is_err());
        assert!(capabilities_final("svc", "", None).is_ok());
        assert!(
            capabilities_previous(c, "a", "").is_ok(),
            "dropping every capability narrows"
        );
        assert!(capabilities_previous(c, "", "a").is_err());
    }

    #[test]
    fn services_narrow_and_target() {
        assert!(services_previous("a:0,b:0", "a:0").is_ok());
        assert!(services_previous("a:0", "a:0,b:0").is_err());
        assert!(services_previous("a:0", "a:1").is_err(), "tier change");
        assert!(services_final("a:0,b:1", Some("b")).is_ok());
        assert_eq!(
            services_final("a:0", Some("b")),
            Err(CaveatError::ServiceNotAuthorized {
                service: "b".into()
            })
        );
    }
}

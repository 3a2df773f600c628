//! The HTTP flow: reuse a token, or meet a 402, pay, and retry in the challenged scheme.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use l402::{Challenge, Credential, Msat};
use url::Url;

use crate::store::Entry;
use crate::{ClientError, Event};

/// A request to send (its body is kept so it can be replayed with a credential).
#[derive(Clone, Debug)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// URL.
    pub url: Url,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Option<Bytes>,
}

impl Request {
    /// A GET request.
    pub fn get(url: Url) -> Self {
        Request {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }
}

/// What was paid for a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentInfo {
    /// The payment hash of the token used.
    pub payment_hash: l402::PaymentHash,
    /// Amount paid for the token (zero if the token was already held).
    pub amount: Msat,
    /// Routing fee paid (zero if the token was already held).
    pub fee: Msat,
    /// Whether the token was paid during this request (`false`: reused).
    pub paid_now: bool,
}

/// A response; its body is read by the caller (streamed or whole).
#[derive(Debug)]
pub struct Response {
    /// The underlying response.
    pub inner: reqwest::Response,
    /// The token used, if any.
    pub payment: Option<PaymentInfo>,
}

/// The origin (`scheme://host:port`) and path scope (the path up to its last `/`).
pub(crate) fn origin_and_scope(url: &Url) -> (String, String) {
    let origin = url.origin().ascii_serialization();
    let path = url.path();
    let scope = match path.rfind('/') {
        Some(i) => path[..=i].to_owned(),
        None => "/".into(),
    };
    (origin, scope)
}

fn authorization(e: &Entry) -> Result<HeaderValue, ClientError> {
    let preimage = e.preimage.clone().ok_or_else(|| ClientError::Store {
        reason: "a paid token without its preimage".into(),
    })?;
    let value = Credential::new(e.macaroon.clone(), preimage).to_authorization(e.scheme);
    HeaderValue::from_str(&value).map_err(|_| ClientError::Protocol {
        reason: "the credential does not fit in a header".into(),
    })
}

/// The price a 402 body advertises, if it does (JSON with `price_msat`, `amount_msat` or
/// `price_sats`).
fn advertised_price(body: &[u8]) -> Option<Msat> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let get = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    get("price_msat")
        .or_else(|| get("amount_msat"))
        .map(Msat::new)
        .or_else(|| get("price_sats").map(Msat::from_sat))
}

fn is_refusal(status: StatusCode) -> bool {
    status == StatusCode::PAYMENT_REQUIRED || status == StatusCode::UNAUTHORIZED
}

impl crate::L402Client {
    async fn send_raw(
        &self,
        req: &Request,
        credential: Option<HeaderValue>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut b = self
            .http
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        match credential {
            Some(c) => b = b.header(http::header::AUTHORIZATION, c),
            None => b = b.header("accept-authenticate", "L402"),
        }
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        }
        b.send().await.map_err(|e| ClientError::Network {
            reason: l402::error_chain(&e),
        })
    }

    /// Sends `req`, paying for access if the server asks and the budget allows.
    pub async fn send(&self, req: Request) -> Result<Response, ClientError> {
        let (origin, scope) = origin_and_scope(&req.url);
        let path = req.url.path().to_owned();

        // Earlier payments for this origin left unresolved (a crash, a timeout) come first.
        for e in self.payer.store.pending(Some(&origin)).await? {
            if path.starts_with(&e.scope) {
                self.payer.resolve(&e).await?;
            }
        }

        let mut challenge_response = None;
        if let Some(token) = self.payer.store.token_for(&origin, &path).await? {
            self.payer.events.emit(Event::TokenReused {
                payment_hash: token.payment_hash,
            });
            let resp = self.send_raw(&req, Some(authorization(&token)?)).await?;
            if !is_refusal(resp.status()) {
                return Ok(Response {
                    inner: resp,
                    payment: Some(PaymentInfo {
                        payment_hash: token.payment_hash,
                        amount: Msat::ZERO,
                        fee: Msat::ZERO,
                        paid_now: false,
                    }),
                });
            }
            // Revoked, expired, or for another service: never use it again here.
            self.payer.store.reject(&token.payment_hash).await?;
            self.payer.events.emit(Event::TokenRefused {
                payment_hash: token.payment_hash,
                status: resp.status().as_u16(),
            });
            if !self.allow_repay {
                let status = resp.status().as_u16();
                let message = resp.text().await.unwrap_or_default().trim().to_owned();
                return Err(ClientError::CredentialRefused { status, message });
            }
            if resp.status() == StatusCode::PAYMENT_REQUIRED {
                challenge_response = Some(resp);
            }
        }

        let resp = match challenge_response {
            Some(r) => r,
            None => self.send_raw(&req, None).await?,
        };
        if resp.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(Response {
                inner: resp,
                payment: None,
            });
        }
        let values = crate::challenge_values(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        let all = Challenge::parse_all(values.iter().map(String::as_str)).map_err(|e| {
            ClientError::Protocol {
                reason: format!("402 without a usable L402 challenge: {e}"),
            }
        })?;
        let challenge = Challenge::preferred(&all)
            .expect("parse_all returns at least one")
            .clone();
        self.payer.events.emit(Event::Challenged {
            scheme: challenge.scheme(),
            invoice: challenge.invoice().to_owned(),
        });
        if self.no_pay {
            return Err(ClientError::OverBudget {
                reason: "paying is disabled".into(),
            });
        }
        let (token, paid_now) = self
            .payer
            .buy(&origin, &scope, &challenge, advertised_price(&body))
            .await?;
        self.payer.events.emit(Event::Retrying);
        let resp = self.send_raw(&req, Some(authorization(&token)?)).await?;
        if is_refusal(resp.status()) {
            self.payer.store.reject(&token.payment_hash).await?;
            let status = resp.status().as_u16();
            let message = resp.text().await.unwrap_or_default().trim().to_owned();
            return Err(ClientError::CredentialRefused { status, message });
        }
        Ok(Response {
            inner: resp,
            payment: Some(PaymentInfo {
                payment_hash: token.payment_hash,
                amount: if paid_now { token.amount } else { Msat::ZERO },
                fee: if paid_now {
                    token.fee.unwrap_or(Msat::ZERO)
                } else {
                    Msat::ZERO
                },
                paid_now,
            }),
        })
    }

    /// Resolves every unresolved payment in the journal (after a crash): returns how many turned
    /// out paid and how many failed.
    pub async fn resume(&self) -> Result<(usize, usize), ClientError> {
        self.payer.resume(None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_directories() {
        let s = |u: &str| origin_and_scope(&Url::parse(u).unwrap());
        assert_eq!(
            s("https://api.example.com/weather/today?x=1"),
            ("https://api.example.com".into(), "/weather/".into())
        );
        assert_eq!(
            s("http://127.0.0.1:8080/"),
            ("http://127.0.0.1:8080".into(), "/".into())
        );
        assert_eq!(s("http://h/x"), ("http://h".into(), "/".into()));
    }

    #[test]
    fn advertised_prices() {
        assert_eq!(
            advertised_price(br#"{"price_msat": 1500}"#),
            Some(Msat::new(1500))
        );
        assert_eq!(
            advertised_price(br#"{"price_sats": 2}"#),
            Some(Msat::new(2000))
        );
        assert_eq!(advertised_price(b"payment required\n"), None);
    }
}

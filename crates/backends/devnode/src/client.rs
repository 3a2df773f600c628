//! Reaching a dev node served over HTTP (`l402 devnode --listen ADDR`) from another process.

use l402::{
    BackendError, CreatedInvoice, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest,
    InvoiceState, Msat, Paid, PayRequest, PaymentHash, PaymentState, Preimage,
};
use l402_backend_http::{
    HTTP_PARAMS, HttpOptions, Secret, UriParams, config_error, parse_uri, protocol_error, reqwest,
    status_error, transport_error,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::{NAME, wire};

/// A dev node wallet reached over HTTP.
///
/// URI: `devnode://[api-key@]host:port[/wallet][?timeout=5s]` (`devnode+https://` for TLS, with
/// `cacert=` or `cert=` to trust a private certificate). The wallet defaults to `default`.
#[derive(Clone)]
pub struct DevNodeClient {
    http: reqwest::Client,
    base: Url,
    wallet: String,
    api_key: Option<Secret>,
}

impl std::fmt::Debug for DevNodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevNodeClient")
            .field("base", &self.base.as_str())
            .field("wallet", &self.wallet)
            .field("api_key", &self.api_key)
            .finish()
    }
}

impl DevNodeClient {
    /// Connects to the wallet named by a `devnode://` URI (no request is made yet).
    pub fn from_uri(uri: &str) -> Result<Self, BackendError> {
        let url = parse_uri(uri, NAME)?;
        let scheme = match url.scheme() {
            "devnode" => "http",
            "devnode+https" => "https",
            other => {
                return Err(config_error(
                    NAME,
                    &format!("unsupported scheme {other:?} (use devnode:// or devnode+https://)"),
                ));
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| config_error(NAME, "the URI needs a host: devnode://host:port"))?;
        let port = url.port().unwrap_or(9735);
        let params = UriParams::of(&url);
        params.reject_unknown(&HTTP_PARAMS, NAME)?;
        let options = HttpOptions::from_params(&params, NAME)?;
        let wallet = url.path().trim_matches('/');
        let wallet = if wallet.is_empty() { "default" } else { wallet };
        let api_key = Some(url.username())
            .filter(|u| !u.is_empty())
            .map(Secret::new);
        let base = Url::parse(&format!("{scheme}://{host}:{port}/"))
            .map_err(|e| config_error(NAME, &format!("invalid address: {e}")))?;
        Ok(DevNodeClient {
            http: l402_backend_http::client(NAME, &options)?,
            base,
            wallet: wallet.to_owned(),
            api_key,
        })
    }

    /// The wallet this client acts for.
    pub fn wallet(&self) -> &str {
        &self.wallet
    }

    fn url(&self, tail: &str) -> Url {
        self.base
            .join(&format!("v1/wallets/{}/{tail}", self.wallet))
            .expect("valid path")
    }

    async fn send<T: DeserializeOwned>(
        &self,
        call: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, BackendError> {
        let req = match &self.api_key {
            Some(k) => req.bearer_auth(k.expose()),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(NAME, call, e))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| transport_error(NAME, call, e))?;
        if status.is_success() {
            return serde_json::from_str(&body)
                .map_err(|e| protocol_error(NAME, call, format!("bad JSON answer: {e}")));
        }
        // Our own error envelope carries the exact kind; anything else gets the generic mapping.
        match serde_json::from_str::<wire::ErrorBody>(&body) {
            Ok(b) => {
                let kind = wire::kind_from_wire(&b.error.kind).unwrap_or(ErrorKind::Protocol);
                Err(BackendError::new(kind, NAME, call, b.error.message))
            }
            Err(_) => Err(status_error(NAME, call, status, &body)),
        }
    }
}

fn preimage(s: Option<&str>, call: &'static str) -> Result<Preimage, BackendError> {
    s.ok_or_else(|| protocol_error(NAME, call, "no preimage in the answer"))?
        .parse()
        .map_err(|e: l402::Error| protocol_error(NAME, call, e.to_string()))
}

impl InvoiceIssuer for DevNodeClient {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "create invoice";
        let body = wire::CreateInvoice {
            amount_msat: request.amount.as_u64(),
            memo: request.memo,
            expiry_secs: request.expiry.as_secs().max(1),
        };
        let inv: wire::Invoice = self
            .send(CALL, self.http.post(self.url("invoices")).json(&body))
            .await?;
        Ok(CreatedInvoice {
            payment_hash: inv
                .payment_hash
                .parse()
                .map_err(|e: l402::Error| protocol_error(NAME, CALL, e.to_string()))?,
            bolt11: inv.bolt11,
        })
    }

    async fn invoice_state(
        &self,
        payment_hash: &PaymentHash,
    ) -> Result<InvoiceState, BackendError> {
        const CALL: &str = "invoice state";
        let s: wire::State = self
            .send(
                CALL,
                self.http.get(self.url(&format!("invoices/{payment_hash}"))),
            )
            .await?;
        match s.state.as_str() {
            "open" => Ok(InvoiceState::Open),
            "settled" => Ok(InvoiceState::Settled),
            "cancelled" => Ok(InvoiceState::Cancelled),
            "expired" => Ok(InvoiceState::Expired),
            other => Err(protocol_error(
                NAME,
                CALL,
                format!("unknown state {other:?}"),
            )),
        }
    }
}

impl InvoicePayer for DevNodeClient {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn pay(&self, request: PayRequest) -> Result<Paid, BackendError> {
        const CALL: &str = "pay";
        let body = wire::Pay {
            bolt11: request.bolt11,
            max_fee_msat: request.max_fee.as_u64(),
        };
        let p: wire::Payment = self
            .send(
                CALL,
                self.http
                    .post(self.url("payments"))
                    .json(&body)
                    .timeout(request.timeout),
            )
            .await?;
        Ok(Paid {
            preimage: preimage(p.preimage.as_deref(), CALL)?,
            amount: Msat::new(p.amount_msat.unwrap_or(0)),
            fee: Msat::new(p.fee_msat.unwrap_or(0)),
        })
    }

    async fn payment(&self, payment_hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        const CALL: &str = "payment lookup";
        let p: wire::Payment = self
            .send(
                CALL,
                self.http.get(self.url(&format!("payments/{payment_hash}"))),
            )
            .await?;
        Ok(match p.state.as_str() {
            "succeeded" => PaymentState::Succeeded(Paid {
                preimage: preimage(p.preimage.as_deref(), CALL)?,
                amount: Msat::new(p.amount_msat.unwrap_or(0)),
                fee: Msat::new(p.fee_msat.unwrap_or(0)),
            }),
            "not_found" => PaymentState::NotFound,
            "in_flight" => PaymentState::InFlight,
            other => PaymentState::Failed {
                reason: other.trim_start_matches("failed: ").to_owned(),
            },
        })
    }
}

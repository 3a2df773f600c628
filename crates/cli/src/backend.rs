//! One way to name a Lightning backend, for config files and flags alike: a URI.
//!
//! | URI | backend |
//! |---|---|
//! | `devnode:[?data=FILE][&wallet=NAME][&listen=ADDR]` | the embedded dev node, in this process (memory unless `data`; `listen` also serves its HTTP API so other processes can pay) |
//! | `devnode://[key@]host:port[/wallet]` | a dev node served by `l402 devnode` |
//! | `lnbits://<key>@host:port` (`lnbits+https://`) | LNbits (invoice key to issue, admin key to pay) |
//! | `lnd+rest://host:port?macaroon=PATH&cert=PATH` | LND's REST API |
//! | `cln+rest://host:port?rune=…&cacert=PATH` | Core Lightning's clnrest |
//! | `phoenixd://:<password>@host:port` | phoenixd |
//! | `nostr+walletconnect://…` | a Nostr Wallet Connect wallet |

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use l402::{BackendError, InvoiceIssuer, InvoicePayer, SharedIssuer, SharedPayer};
use l402_devnode::{DevNode, DevNodeConfig, DevWallet};

use crate::Failure;

/// Both ends of a backend.
pub(crate) struct Backend {
    pub(crate) issuer: SharedIssuer,
    pub(crate) payer: SharedPayer,
}

fn both<T: InvoiceIssuer + InvoicePayer + Clone + 'static>(b: T) -> Backend {
    Backend {
        issuer: SharedIssuer::new(b.clone()),
        payer: SharedPayer::new(b),
    }
}

fn fail(e: BackendError) -> Failure {
    Failure::backend(e.to_string())
}

/// Embedded dev nodes of this process, by data file, so every `devnode:` URI naming the same file
/// (the proxy's and the client's, in the demo) shares one node.
fn embedded() -> &'static Mutex<HashMap<Option<PathBuf>, DevNode>> {
    static NODES: OnceLock<Mutex<HashMap<Option<PathBuf>, DevNode>>> = OnceLock::new();
    NODES.get_or_init(Default::default)
}

async fn embedded_wallet(uri: &url::Url) -> Result<DevWallet, Failure> {
    let mut data = None;
    let mut wallet = "default".to_string();
    let mut listen = None;
    for (k, v) in uri.query_pairs() {
        match k.as_ref() {
            "data" => data = Some(PathBuf::from(v.as_ref())),
            "wallet" => wallet = v.into_owned(),
            "listen" => listen = Some(v.into_owned()),
            other => {
                return Err(Failure::invalid(format!(
                    "devnode: unknown query parameter {other:?} (known: data, wallet, listen)"
                )));
            }
        }
    }
    let existing = embedded().lock().expect("lock").get(&data).cloned();
    let node = match existing {
        Some(n) => n,
        None => {
            let node = match &data {
                Some(path) => DevNode::open(path, DevNodeConfig::default()).await,
                None => DevNode::in_memory(DevNodeConfig::default()).await,
            }
            .map_err(fail)?;
            if let Some(addr) = listen {
                let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
                    Failure::invalid(format!("devnode: cannot listen on {addr}: {e}"))
                })?;
                let app = node.router(None);
                tracing::info!(%addr, "embedded dev node API listening");
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            embedded().lock().expect("lock").insert(data, node.clone());
            node
        }
    };
    Ok(node.wallet(wallet))
}

/// Connects to the backend a URI names (no request is made, except for embedded nodes).
pub(crate) async fn connect(uri: &str) -> Result<Backend, Failure> {
    let parsed = url::Url::parse(uri)
        .map_err(|e| Failure::invalid(format!("backend URI {}: {e}", redact(uri))))?;
    Ok(match parsed.scheme() {
        "devnode" if parsed.host_str().is_none() => both(embedded_wallet(&parsed).await?),
        "devnode" | "devnode+https" => {
            both(l402_devnode::DevNodeClient::from_uri(uri).map_err(fail)?)
        }
        "lnbits" | "lnbits+https" => both(l402_lnbits::LnbitsBackend::from_uri(uri).map_err(fail)?),
        "lnd+rest" | "lnd+rest+http" => both(l402_lnd::LndBackend::from_uri(uri).map_err(fail)?),
        "cln+rest" | "cln+rest+http" => both(l402_cln::ClnBackend::from_uri(uri).map_err(fail)?),
        "phoenixd" | "phoenixd+https" => {
            both(l402_phoenixd::PhoenixdBackend::from_uri(uri).map_err(fail)?)
        }
        "nostr+walletconnect" => both(l402_nwc::NwcBackend::from_uri(uri).map_err(fail)?),
        other => {
            return Err(Failure::invalid(format!(
                "unknown backend scheme {other:?}; use devnode:, devnode://, lnbits://, lnd+rest://, cln+rest://, phoenixd:// or nostr+walletconnect://"
            )));
        }
    })
}

/// A URI with its secrets (user info, query values) replaced, for messages.
pub(crate) fn redact(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            if !u.username().is_empty() {
                let _ = u.set_username("***");
            }
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let keys: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
            if !keys.is_empty() {
                let q: Vec<String> = keys.iter().map(|k| format!("{k}=***")).collect();
                u.set_query(Some(&q.join("&")));
            }
            u.to_string()
        }
        Err(_) => "<unparseable URI>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_keys_and_query_values() {
        let r = redact("lnbits://SECRETKEY@127.0.0.1:5000");
        assert!(!r.contains("SECRETKEY"), "{r}");
        let r = redact("cln+rest://h:3010?rune=SECRETRUNE&cacert=/x");
        assert!(!r.contains("SECRETRUNE"), "{r}");
        let r = redact("phoenixd://:hunter2@h:9740");
        assert!(!r.contains("hunter2"), "{r}");
    }
}

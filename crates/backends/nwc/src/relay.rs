//! A small Nostr relay connection (NIP-01) on tokio-tungstenite: publish an event and wait for the
//! relay's `OK`, open and close subscriptions.
//!
//! One task owns the WebSocket; [`Relay`] handles talk to it over a channel. The task ends when
//! the socket closes or every handle is dropped; pending publishes and subscriptions then see the
//! connection as lost, and the owner reconnects on its next call.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use l402::ErrorKind;
use l402_backend_http::TlsTrust;
use nostr::event::{Event, EventId};
use nostr::filter::Filter;
use nostr::message::{ClientMessage, RelayMessage, SubscriptionId};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use url::Url;

/// The largest relay message we accept. NIP-44 payloads are at most 64 KiB of plaintext; relays
/// only send us events our filters match.
const MAX_MESSAGE: usize = 1 << 20;

/// A handle on one relay connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Relay {
    commands: mpsc::UnboundedSender<Command>,
    url: Arc<str>,
}

enum Command {
    Publish {
        event: Box<Event>,
        ack: oneshot::Sender<Result<(), String>>,
    },
    Subscribe {
        id: String,
        filter: Box<Filter>,
        notices: mpsc::UnboundedSender<Notice>,
    },
    Close {
        id: String,
    },
}

/// What a subscription receives.
#[derive(Debug)]
pub(crate) enum Notice {
    /// An event matching the filter.
    Event(Box<Event>),
    /// The end of stored events: from now on only new events arrive.
    Eose,
    /// The relay closed the subscription, with its reason.
    Closed(String),
}

/// An open subscription; dropping it sends `CLOSE`.
pub(crate) struct Subscription {
    id: String,
    notices: mpsc::UnboundedReceiver<Notice>,
    commands: mpsc::UnboundedSender<Command>,
}

/// Why a publish failed.
#[derive(Debug)]
pub(crate) enum PublishError {
    /// The connection closed before the relay answered.
    Lost,
    /// The relay answered `OK false` with this message.
    Rejected(String),
}

// === impl Relay ===

impl Relay {
    /// Opens a WebSocket to `url` (`ws://` or `wss://`, trusting certificates as `tls` says).
    /// The caller bounds the time. Errors carry the kind to report and a detail without secrets.
    pub(crate) async fn connect(
        url: &Url,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Relay, (ErrorKind, String)> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(config),
            true,
            Some(Connector::Rustls(tls)),
        )
        .await
        .map_err(|e| classify_connect_error(url, e))?;
        let (commands, rx) = mpsc::unbounded_channel();
        let name: Arc<str> = Arc::from(url.as_str());
        tokio::spawn(drive(ws, rx, name.clone()));
        Ok(Relay {
            commands,
            url: name,
        })
    }

    /// The relay's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Publishes `event` and waits for the relay's `OK`.
    pub(crate) async fn publish(&self, event: Event) -> Result<(), PublishError> {
        let (ack, answer) = oneshot::channel();
        self.commands
            .send(Command::Publish {
                event: Box::new(event),
                ack,
            })
            .map_err(|_| PublishError::Lost)?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(PublishError::Rejected(message)),
            Err(_) => Err(PublishError::Lost),
        }
    }

    /// Opens a subscription; `None` when the connection has ended.
    pub(crate) fn subscribe(&self, filter: Filter) -> Option<Subscription> {
        let id = random_id();
        let (notices, rx) = mpsc::unbounded_channel();
        self.commands
            .send(Command::Subscribe {
                id: id.clone(),
                filter: Box::new(filter),
                notices,
            })
            .ok()?;
        Some(Subscription {
            id,
            notices: rx,
            commands: self.commands.clone(),
        })
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("url", &self.url)
            .field("closed", &self.is_closed())
            .finish()
    }
}

// === impl Subscription ===

impl Subscription {
    /// The next notice; `None` once the connection has ended.
    pub(crate) async fn next(&mut self) -> Option<Notice> {
        self.notices.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close {
            id: std::mem::take(&mut self.id),
        });
    }
}

// === the connection task ===

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn drive(ws: Ws, mut commands: mpsc::UnboundedReceiver<Command>, url: Arc<str>) {
    let (mut sink, mut stream) = ws.split();
    let mut subs: HashMap<String, mpsc::UnboundedSender<Notice>> = HashMap::new();
    let mut acks: HashMap<EventId, oneshot::Sender<Result<(), String>>> = HashMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else {
                    // Every handle is gone: say goodbye properly.
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                };
                let text = match command {
                    Command::Publish { event, ack } => {
                        acks.insert(event.id, ack);
                        to_json(&ClientMessage::event(*event))
                    }
                    Command::Subscribe { id, filter, notices } => {
                        subs.insert(id.clone(), notices);
                        to_json(&ClientMessage::req(SubscriptionId::new(id), vec![*filter]))
                    }
                    Command::Close { id } => {
                        if subs.remove(&id).is_none() {
                            continue;
                        }
                        to_json(&ClientMessage::close(SubscriptionId::new(id)))
                    }
                };
                if let Err(e) = sink.send(Message::text(text)).await {
                    tracing::debug!(relay = %url, error = %e, "relay write failed");
                    break;
                }
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => dispatch(text.as_str(), &mut subs, &mut acks, &url),
                // tungstenite answers pings itself on the next read or write.
                Some(Ok(Message::Close(_))) | None => {
                    tracing::debug!(relay = %url, "relay closed the connection");
                    break;
                }
                Some(Err(e)) => {
                    tracing::debug!(relay = %url, error = %e, "relay read failed");
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    // Dropping `subs` and `acks` tells every waiter the connection is gone.
}

fn dispatch(
    text: &str,
    subs: &mut HashMap<String, mpsc::UnboundedSender<Notice>>,
    acks: &mut HashMap<EventId, oneshot::Sender<Result<(), String>>>,
    url: &str,
) {
    let message: RelayMessage<'_> = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(relay = %url, error = %e, "unreadable relay message ignored");
            return;
        }
    };
    match message {
        RelayMessage::Event {
            subscription_id,
            event,
        } => {
            if let Some(tx) = subs.get(subscription_id.as_str()) {
                let _ = tx.send(Notice::Event(Box::new(event.into_owned())));
            }
        }
        RelayMessage::EndOfStoredEvents(id) => {
            if let Some(tx) = subs.get(id.as_str()) {
                let _ = tx.send(Notice::Eose);
            }
        }
        RelayMessage::Closed {
            subscription_id,
            message,
        } => {
            if let Some(tx) = subs.remove(subscription_id.as_str()) {
                let _ = tx.send(Notice::Closed(message.into_owned()));
            }
        }
        RelayMessage::Ok {
            event_id,
            status,
            message,
        } => {
            if let Some(ack) = acks.remove(&event_id) {
                let _ = ack.send(if status {
                    Ok(())
                } else {
                    Err(message.into_owned())
                });
            }
        }
        RelayMessage::Notice(message) => {
            tracing::debug!(relay = %url, %message, "relay notice");
        }
        other => {
            tracing::trace!(relay = %url, ?other, "relay message ignored");
        }
    }
}

fn to_json(message: &ClientMessage<'_>) -> String {
    serde_json::to_string(message).expect("client messages serialise")
}

fn random_id() -> String {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    hex::encode(b)
}

// === errors and TLS ===

fn classify_connect_error(url: &Url, e: tungstenite::Error) -> (ErrorKind, String) {
    use tungstenite::Error as E;
    let kind = match &e {
        E::Http(response) => match response.status().as_u16() {
            401 | 403 => ErrorKind::Unauthorized,
            429 | 500..=599 => ErrorKind::Unavailable,
            // A web server that is not a relay (wrong path, wrong port).
            _ => ErrorKind::Protocol,
        },
        E::Url(_) => ErrorKind::InvalidRequest,
        E::Capacity(_) | E::Protocol(_) | E::Utf8(_) | E::AttackAttempt | E::HttpFormat(_) => {
            ErrorKind::Protocol
        }
        // Connection refused, DNS, TLS handshake, reset.
        _ => ErrorKind::Unreachable,
    };
    let detail = match &e {
        E::Http(response) => format!(
            "relay {url} refused the WebSocket upgrade with HTTP {}",
            response.status()
        ),
        _ => format!("relay {url}: {e}"),
    };
    (kind, detail)
}

/// The rustls configuration (ring provider) for `wss://` relays.
pub(crate) fn tls_config(trust: &TlsTrust) -> Result<rustls::ClientConfig, String> {
    let builder = || {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))
    };
    let read = |path: &std::path::Path| -> Result<Vec<CertificateDer<'static>>, String> {
        let certs: Vec<_> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read certificate file {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {}", path.display()));
        }
        Ok(certs)
    };
    match trust {
        TlsTrust::WebPki => Ok(builder()?
            .with_root_certificates(rustls::RootCertStore::from_iter(
                webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
            ))
            .with_no_client_auth()),
        TlsTrust::CaFile(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
            }
            Ok(builder()?
                .with_root_certificates(roots)
                .with_no_client_auth())
        }
        TlsTrust::Pinned(path) => Ok(l402_backend_http::pinned_certificate_config(
            read(path)?.swap_remove(0),
        )),
    }
}

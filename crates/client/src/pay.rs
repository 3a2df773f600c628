//! Paying a challenge: refuse what must not be paid, journal before paying, never pay twice.

use std::time::Duration;

use l402::{
    Challenge, ErrorKind, Identifier, InvoicePayer, Msat, PayRequest, PaymentHash, PaymentState,
    SharedPayer,
};
use lightning_invoice::Currency;

use crate::store::{Claim, ClientStore, Entry, EntryState, now};
use crate::{Budget, ClientError, Event, EventSink};

/// Everything needed to pay.
#[derive(Clone)]
pub(crate) struct Payer {
    pub(crate) wallet: SharedPayer,
    pub(crate) store: ClientStore,
    pub(crate) budget: Budget,
    pub(crate) network: Option<Currency>,
    pub(crate) timeout: Duration,
    pub(crate) events: EventSink,
}

/// The checks a challenge must pass before a satoshi moves.
pub(crate) fn check_challenge(
    challenge: &Challenge,
    network: Option<Currency>,
    advertised: Option<Msat>,
) -> Result<(PaymentHash, Msat), ClientError> {
    let refuse = |reason: String| ClientError::ChallengeRefused { reason };
    let invoice = l402::bolt11::decode(challenge.invoice())
        .map_err(|e| refuse(format!("the invoice does not decode: {e}")))?;
    let hash = invoice.payment_hash;
    let id = Identifier::decode(challenge.macaroon().identifier())
        .map_err(|e| refuse(format!("the macaroon is not an L402 token: {e}")))?;
    if *id.payment_hash() != hash {
        return Err(refuse(format!(
            "the invoice pays {hash}, but the macaroon is bound to {}: paying would not unlock it",
            id.payment_hash()
        )));
    }
    let amount = invoice.amount.ok_or_else(|| {
        refuse(
            "the invoice has no amount (amountless invoices are never paid automatically)".into(),
        )
    })?;
    if let Some(want) = network.filter(|w| invoice.currency != *w) {
        return Err(refuse(format!(
            "the invoice is for {}, this wallet is on {}",
            l402::bolt11::network_name(&invoice.currency),
            l402::bolt11::network_name(&want)
        )));
    }
    if invoice.is_expired() {
        return Err(refuse("the invoice has expired".into()));
    }
    if let Some(price) = advertised.filter(|p| *p != amount) {
        return Err(refuse(format!(
            "the invoice asks {amount} msat but the server advertised {price} msat"
        )));
    }
    Ok((hash, amount))
}

/// What resolving a pending entry found.
pub(crate) enum Resolution {
    /// It was paid: the token is usable.
    Paid(Box<Entry>),
    /// It failed: nothing was spent; a new challenge may be paid.
    Failed,
}

impl Payer {
    /// Gets a paid token for `challenge`, within the budget, journaled before paying. Also says
    /// whether this call paid (or completed a payment) rather than reusing a token bought by a
    /// concurrent request.
    pub(crate) async fn buy(
        &self,
        origin: &str,
        scope: &str,
        challenge: &Challenge,
        advertised: Option<Msat>,
    ) -> Result<(Entry, bool), ClientError> {
        let (hash, amount) = check_challenge(challenge, self.network.clone(), advertised)?;
        self.budget.check_price(amount)?;
        let entry = Entry {
            payment_hash: hash,
            origin: origin.to_owned(),
            scope: scope.to_owned(),
            scheme: challenge.scheme(),
            macaroon: challenge.macaroon().clone(),
            invoice: challenge.invoice().to_owned(),
            amount,
            state: EntryState::Pending,
            preimage: None,
            fee: None,
            created_at: now(),
            rejected_at: None,
        };
        // A concurrent request may have paid (or be paying) for the same scope.
        for _ in 0..3 {
            match self.store.claim(&entry, &self.budget).await? {
                Claim::Pay => return self.pay(entry).await.map(|t| (t, true)),
                Claim::Token(t) => {
                    self.events.emit(Event::TokenReused {
                        payment_hash: t.payment_hash,
                    });
                    return Ok((*t, false));
                }
                Claim::Pending(p) => match self.resolve(&p).await? {
                    Resolution::Paid(t) => return Ok((*t, true)),
                    Resolution::Failed => continue,
                },
            }
        }
        Err(ClientError::PaymentPending {
            payment_hash: hash.to_hex(),
            reason: "other payments for this resource keep appearing".into(),
        })
    }

    /// Pays a journaled, pending entry.
    async fn pay(&self, entry: Entry) -> Result<Entry, ClientError> {
        self.events.emit(Event::Paying {
            payment_hash: entry.payment_hash,
            amount: entry.amount,
            invoice: entry.invoice.clone(),
        });
        let mut req = PayRequest::new(entry.invoice.clone(), self.budget.max_fee);
        req.timeout = self.timeout;
        match self.wallet.pay(req).await {
            Ok(paid) => self.completed(entry, paid).await,
            Err(e) if e.kind() == ErrorKind::AlreadyPaid => {
                // Paid before (by us, before a crash): the wallet knows the preimage.
                match self.wallet.payment(&entry.payment_hash).await {
                    Ok(PaymentState::Succeeded(paid)) => self.completed(entry, paid).await,
                    Ok(other) => Err(ClientError::PaymentFailed {
                        reason: format!("{e}, but the wallet reports {other:?} for it"),
                    }),
                    Err(lookup) => Err(ClientError::PaymentPending {
                        payment_hash: entry.payment_hash.to_hex(),
                        reason: format!("{e}, and the lookup failed: {lookup}"),
                    }),
                }
            }
            Err(e)
                if e.is_transient()
                    || matches!(e.kind(), ErrorKind::Protocol | ErrorKind::Unsupported) =>
            {
                // The payment may or may not have gone out: keep it pending for a later lookup.
                Err(ClientError::PaymentPending {
                    payment_hash: entry.payment_hash.to_hex(),
                    reason: e.to_string(),
                })
            }
            Err(e) => {
                self.store.fail(&entry.payment_hash).await?;
                Err(ClientError::PaymentFailed {
                    reason: e.to_string(),
                })
            }
        }
    }

    async fn completed(&self, mut entry: Entry, paid: l402::Paid) -> Result<Entry, ClientError> {
        if !paid.preimage.matches(&entry.payment_hash) {
            // Not a proof of payment; keep the entry pending so a lookup can still settle it.
            return Err(ClientError::PaymentPending {
                payment_hash: entry.payment_hash.to_hex(),
                reason: "the wallet returned a preimage that does not match the payment hash"
                    .into(),
            });
        }
        self.store
            .complete(&entry.payment_hash, &paid.preimage, paid.fee)
            .await?;
        self.events.emit(Event::Paid {
            payment_hash: entry.payment_hash,
            fee: paid.fee,
        });
        entry.state = EntryState::Paid;
        entry.preimage = Some(paid.preimage);
        entry.fee = Some(paid.fee);
        Ok(entry)
    }

    /// Settles what became of a pending entry by asking the wallet, paying it only if the
    /// wallet has positively never seen it.
    pub(crate) async fn resolve(&self, entry: &Entry) -> Result<Resolution, ClientError> {
        let pending = |reason: String| ClientError::PaymentPending {
            payment_hash: entry.payment_hash.to_hex(),
            reason,
        };
        let state = self
            .wallet
            .payment(&entry.payment_hash)
            .await
            .map_err(|e| pending(format!("the wallet cannot tell: {e}")))?;
        self.events.emit(Event::Resumed {
            payment_hash: entry.payment_hash,
        });
        match state {
            PaymentState::Succeeded(paid) => Ok(Resolution::Paid(Box::new(
                self.completed(entry.clone(), paid).await?,
            ))),
            PaymentState::InFlight => Err(pending("the payment is still in flight".into())),
            PaymentState::Failed { .. } => {
                self.store.fail(&entry.payment_hash).await?;
                Ok(Resolution::Failed)
            }
            PaymentState::NotFound => {
                // The wallet never received the payment (we stopped before asking it): pay now,
                // unless the invoice has expired meanwhile.
                let expired = l402::bolt11::decode(&entry.invoice)
                    .map(|i| i.is_expired())
                    .unwrap_or(true);
                if expired {
                    self.store.fail(&entry.payment_hash).await?;
                    return Ok(Resolution::Failed);
                }
                match self.pay(entry.clone()).await {
                    Ok(t) => Ok(Resolution::Paid(Box::new(t))),
                    Err(ClientError::PaymentFailed { .. }) => Ok(Resolution::Failed),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Resolves every pending entry for `origin` (all origins when `None`); returns how many
    /// became paid and how many failed. Entries still unresolved are reported as errors.
    pub(crate) async fn resume(&self, origin: Option<&str>) -> Result<(usize, usize), ClientError> {
        let (mut paid, mut failed) = (0, 0);
        for e in self.store.pending(origin).await? {
            match self.resolve(&e).await? {
                Resolution::Paid(_) => paid += 1,
                Resolution::Failed => failed += 1,
            }
        }
        Ok((paid, failed))
    }
}

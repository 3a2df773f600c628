//! The [`Authority`]: verifies credentials and mints challenges.
//!
//! Verification never calls the Lightning node and, once a token's root key is cached, never
//! touches the database: parse → preflight (identifier, preimage) → root key (cache, else store)
//! → signature and caveats. A store that cannot answer is a 503, never a fresh challenge.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::request::Parts;
use l402::{
    Challenge, ChallengeFormat, Context, Credential, Identifier, InvoiceIssuer, InvoiceRequest,
    KeyId, Prechecked, RootKey, RootKeyStore, TokenId, TokenRecord, VerifiedToken, Verifier, mint,
};

use crate::cache::{
    CREDENTIAL_CACHE_CAPACITY, Cached, CredentialCache, KnownCredential, RootKeyCache, Terms,
    Verdict,
};
use crate::{OnInvalid, OnMissing, Policy, Rejection};

/// How an [`Authority`] mints and verifies.
#[derive(Clone, Debug)]
pub struct AuthorityOptions {
    /// The macaroon location (Aperture writes `lsat`).
    pub location: String,
    /// How long an invoice can be paid.
    pub invoice_expiry: Duration,
    /// How challenges are written.
    pub challenge_format: ChallengeFormat,
    /// Refuse caveats nobody checks (default: skip them, as the spec says).
    pub strict_caveats: bool,
    /// How many root keys to cache.
    pub cache_capacity: usize,
    /// How long a cached root key is trusted before it is read again (bounds how long a
    /// revocation missed by every notification could go unseen).
    pub cache_ttl: Duration,
    /// The `Retry-After` of a 503.
    pub retry_after: Duration,
}

impl Default for AuthorityOptions {
    fn default() -> Self {
        AuthorityOptions {
            location: l402::DEFAULT_LOCATION.into(),
            invoice_expiry: Duration::from_secs(3600),
            challenge_format: ChallengeFormat::default(),
            strict_caveats: false,
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(300),
            retry_after: Duration::from_secs(2),
        }
    }
}

/// Verifies credentials and mints challenges for one token store and one invoice issuer.
/// Cheap to clone.
pub struct Authority<I, K> {
    inner: Arc<Inner<I, K>>,
}

struct Inner<I, K> {
    issuer: I,
    store: K,
    cache: RootKeyCache,
    credentials: CredentialCache,
    options: AuthorityOptions,
}

impl<I, K> Clone for Authority<I, K> {
    fn clone(&self) -> Self {
        Authority {
            inner: self.inner.clone(),
        }
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<I, K> Authority<I, K>
where
    I: InvoiceIssuer + 'static,
    K: RootKeyStore + 'static,
{
    /// An authority over `issuer` (creates invoices) and `store` (keeps root keys).
    pub fn new(issuer: I, store: K, options: AuthorityOptions) -> Self {
        let cache = RootKeyCache::new(options.cache_capacity, options.cache_ttl);
        let credentials =
            CredentialCache::new(options.cache_capacity.min(CREDENTIAL_CACHE_CAPACITY));
        Authority {
            inner: Arc::new(Inner {
                issuer,
                store,
                cache,
                credentials,
                options,
            }),
        }
    }

    /// The invoice issuer.
    pub fn issuer(&self) -> &I {
        &self.inner.issuer
    }

    /// The token store.
    pub fn store(&self) -> &K {
        &self.inner.store
    }

    /// The options.
    pub fn options(&self) -> &AuthorityOptions {
        &self.inner.options
    }

    /// How many parsed credentials are cached (see [`authorize`](Self::authorize)).
    pub fn cached_credentials(&self) -> usize {
        self.inner.credentials.len()
    }

    /// Forgets a cached root key (after a revocation).
    pub fn invalidate(&self, key_id: &KeyId) {
        self.inner.cache.remove(key_id);
    }

    /// Forgets every cached root key (when revocations may have been missed).
    pub fn invalidate_all(&self) {
        self.inner.cache.clear();
    }

    /// Decides a request: let it through ([`Grant::Token`] with the verified token, or
    /// [`Grant::Free`] when the price came out as zero), or the rejection to answer with (a
    /// challenge when there is no credential, 401/402 when it is invalid, 503 when the store or
    /// the Lightning backend cannot answer).
    pub fn authorize<'a>(
        &'a self,
        request: &'a Parts,
        policy: &'a Policy,
    ) -> impl Future<Output = Result<Grant, Rejection>> + Send + 'a {
        // Not an `async fn`: `authorize_with`'s future is returned as it is, not moved into
        // another one on every request.
        self.authorize_with(request, None, policy)
    }

    /// [`authorize`](Self::authorize) for a request whose only `Authorization` value, when it
    /// has one, the caller holds apart from `request.headers` (`authorization`; `None`: read the
    /// headers). A server that parses requests itself saves building that long value into the
    /// header map; the decision is the one `authorize` makes with the value among the headers.
    pub async fn authorize_with(
        &self,
        request: &Parts,
        authorization: Option<&[u8]>,
        policy: &Policy,
    ) -> Result<Grant, Rejection> {
        // With exactly one `Authorization` value, a credential that verified before under that
        // very value is taken parsed (it alone decides: hex headers are read only without one).
        let single = authorization.or_else(|| single_authorization(&request.headers));
        if let Some(value) = single
            && let Some(known) = self.inner.credentials.get(value)
        {
            return self.check_known(&known, request, policy).await;
        }
        let parsed = match authorization {
            None => Credential::from_headers(&request.headers),
            Some(value) => match Credential::from_authorization(value) {
                Ok(Some(credential)) => Ok(credential),
                Ok(None) => Credential::from_hex_headers(&request.headers),
                Err(e) => Err(e),
            },
        };
        match parsed {
            Ok(credential) => {
                let checked = self.check(&credential, None, request, policy).await?;
                if let Some(value) = single
                    && matches!(credential.form(), l402::CredentialForm::Authorization(_))
                {
                    self.inner.credentials.insert(
                        value,
                        Arc::new(KnownCredential::new(credential, checked.prechecked)),
                    );
                }
                Ok(Grant::Token(checked.token))
            }
            // Minting is boxed: the verification path's future stays small.
            Err(e) if e.is_missing() => match policy.on_missing {
                OnMissing::Challenge => Box::pin(self.challenge(request, policy)).await,
                OnMissing::Unauthorized => Err(Rejection::Unauthorized {
                    reason: e.to_string(),
                }),
            },
            Err(e) => Box::pin(self.invalid(request, policy, e.to_string())).await,
        }
    }

    /// Verifies a parsed credential against `policy`.
    pub async fn verify(
        &self,
        credential: &Credential,
        request: &Parts,
        policy: &Policy,
    ) -> Result<VerifiedToken, Rejection> {
        self.check(credential, None, request, policy)
            .await
            .map(|checked| checked.token)
    }

    /// A credential that verified before under this very `Authorization` value: its last
    /// verdict when that still holds (see [`Verdict`]), else verified again from its parsed form
    /// (and the verdict renewed).
    async fn check_known(
        &self,
        known: &KnownCredential,
        request: &Parts,
        policy: &Policy,
    ) -> Result<Grant, Rejection> {
        let strict = self.inner.options.strict_caveats;
        let path = request.uri.path();
        let now = now_secs();
        {
            let verdict = known.verdict.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(token) = verdict.as_ref().and_then(|v| {
                v.grant(
                    policy,
                    strict,
                    path,
                    now,
                    Instant::now(),
                    self.inner.cache.generation(),
                )
            }) {
                return Ok(Grant::Token(token));
            }
        }
        let checked = self
            .check(&known.credential, Some(&known.prechecked), request, policy)
            .await?;
        let terms = Terms::of(policy, strict, path);
        if let (Some(terms), Some((generation, fresh_until))) = (terms, checked.reusable) {
            *known.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(Verdict {
                terms,
                token: checked.token.clone(),
                generation,
                fresh_until,
            });
        }
        Ok(Grant::Token(checked.token))
    }

    /// [`verify`](Self::verify), with what an earlier preflight of this credential established
    /// (its hashes are not computed again); returns it for the next time too.
    async fn check(
        &self,
        credential: &Credential,
        prior: Option<&Prechecked>,
        request: &Parts,
        policy: &Policy,
    ) -> Result<Checked, Rejection> {
        // Every configured constraint and the price binding must be on the token. Built per
        // request without allocating unless the policy has custom satisfiers or a binding.
        let mut verifier = Verifier::new()
            .service(policy.service.clone())
            .strict(self.inner.options.strict_caveats)
            .constraints(policy.constraints.clone());
        for s in policy.satisfiers.iter() {
            verifier = verifier.satisfier(s.clone());
        }
        for (condition, s) in policy.bindings(request.uri.path()) {
            // A constraint of the same name decides that condition, as it always has.
            if !policy.constraints.iter().any(|(c, _)| *c == condition) {
                verifier = verifier.satisfier(s);
            }
            verifier = verifier.require(condition);
        }
        let preflight = match prior {
            Some(prior) => verifier.preflight_with(credential, prior),
            None => verifier.preflight(credential),
        };
        let pending = match preflight {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(request, policy, e.to_string()).await),
        };
        let prechecked = pending.prechecked();
        let key_id = pending.key_id();
        let identifier = *pending.identifier();
        // Read before the lookup: a removal after it shows as a newer generation.
        let generation = self.inner.cache.generation();
        let Some((cached, from_cache)) = self.root_key(&key_id, &identifier).await? else {
            return Err(self
                .refuse(request, policy, "unknown or revoked token".to_string())
                .await);
        };
        let mut context = Context::at(now_secs());
        if let Some(cap) = policy.required_capability.as_deref() {
            context = context.with_capability(cap);
        }
        match pending.finish_with_memo(
            &verifier,
            &cached.root_key,
            &context,
            cached.memo.as_deref(),
        ) {
            Ok((token, memo)) => {
                if let Some(memo) = memo {
                    self.inner.cache.set_memo(&key_id, memo);
                }
                if !cached.paid_recorded {
                    self.record_paid(key_id, identifier, policy.service.clone());
                }
                // A verdict may rest on a key the cache held (and would hold again) with the
                // payment already recorded: a failed recording removes the key, which ends it.
                let reusable = (from_cache && cached.paid_recorded)
                    .then_some((generation, cached.fresh_until));
                Ok(Checked {
                    token,
                    prechecked,
                    reusable,
                })
            }
            Err(e) => Err(self.refuse(request, policy, e.to_string()).await),
        }
    }

    /// The root key of `identifier` (whose key id is `key_id`): from the cache (`true`), else
    /// the store.
    async fn root_key(
        &self,
        key_id: &KeyId,
        identifier: &Identifier,
    ) -> Result<Option<(Cached, bool)>, Rejection> {
        if let Some(hit) = self.inner.cache.get(key_id) {
            return Ok(Some((hit, true)));
        }
        let generation = self.inner.cache.generation();
        match self.inner.store.root_key(identifier).await {
            Ok(Some(k)) => {
                self.inner
                    .cache
                    .insert(*key_id, k.clone(), false, generation);
                Ok(Some((
                    Cached {
                        root_key: k,
                        fresh_until: Instant::now(),
                        paid_recorded: false,
                        memo: None,
                    },
                    false,
                )))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "root key lookup failed; answering 503");
                Err(Rejection::Unavailable {
                    retry_after: self.inner.options.retry_after,
                    reason: "the token store cannot be reached".into(),
                })
            }
        }
    }

    /// Records, off the response path, that the token was seen paid.
    fn record_paid(&self, key_id: KeyId, identifier: Identifier, service: std::sync::Arc<str>) {
        self.inner.cache.set_paid_recorded(&key_id);
        let this = self.clone();
        tokio::spawn(async move {
            match this.inner.store.mark_paid(&identifier).await {
                Ok(Some(price)) => {
                    let service = service.to_string();
                    metrics::counter!("l402_invoices_settled_total", "service" => service.clone())
                        .increment(1);
                    metrics::counter!("l402_revenue_msat_total", "service" => service)
                        .increment(price.as_u64());
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "could not record a token as paid; will retry next time");
                    this.inner.cache.remove(&key_id);
                }
            }
        });
    }

    /// The answer to an invalid credential: 401, or a fresh challenge in Aperture mode (which
    /// may also come out free, when a dynamic price is zero).
    async fn invalid(
        &self,
        request: &Parts,
        policy: &Policy,
        reason: String,
    ) -> Result<Grant, Rejection> {
        tracing::debug!(service = %policy.service, %reason, "invalid L402 credential");
        match policy.on_invalid {
            OnInvalid::Unauthorized => Err(Rejection::Unauthorized { reason }),
            OnInvalid::Challenge => Box::pin(self.challenge(request, policy)).await,
        }
    }

    /// Like [`invalid`](Self::invalid) for callers that need a rejection: a free pass cannot be
    /// granted on a credential that failed verification, so it becomes a 401.
    async fn refuse(&self, request: &Parts, policy: &Policy, reason: String) -> Rejection {
        match Box::pin(self.invalid(request, policy, reason.clone())).await {
            Err(r) => r,
            Ok(_) => Rejection::Unauthorized { reason },
        }
    }

    /// Mints a challenge for `policy`: the price (fixed, or from the pricer: zero grants a free
    /// pass), the mint guard, an invoice from the issuer, a fresh root key stored durably, a
    /// macaroon bound to the invoice. Returns the 402 rejection carrying it, or a 503 when the
    /// pricer, the issuer or the store cannot complete (no challenge ever leaves without its root
    /// key on disk).
    pub async fn challenge(&self, request: &Parts, policy: &Policy) -> Result<Grant, Rejection> {
        let o = &self.inner.options;
        let unavailable = |reason: &str| Rejection::Unavailable {
            retry_after: o.retry_after,
            reason: reason.into(),
        };
        let price = match &policy.pricer {
            None => policy.price,
            Some(p) => p.price(request).await.map_err(|e| {
                tracing::warn!(error = %e, service = %policy.service, "pricer failed; answering 503");
                unavailable("the price of this request cannot be determined")
            })?,
        };
        if price == l402::Msat::ZERO {
            return Ok(Grant::Free);
        }
        if let Some(guard) = &policy.mint_guard {
            guard.check(request)?;
        }
        let now = now_secs();
        let caveats = policy
            .caveats(now, price, request.uri.path())
            .map_err(|e| {
                tracing::error!(error = %e, service = %policy.service, "cannot build caveats");
                unavailable("the service's token terms are invalid")
            })?;
        let invoice = self
            .inner
            .issuer
            .create_invoice(
                InvoiceRequest::new(price, format!("L402 {}", policy.service))
                    .expiry(o.invoice_expiry),
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot create an invoice; answering 503");
                unavailable("the Lightning backend cannot issue an invoice")
            })?;
        let root_key = RootKey::generate();
        let id = Identifier::new(invoice.payment_hash, TokenId::time_ordered(now_millis()));
        let macaroon = mint(&root_key, &id, &o.location, &caveats);
        let record = TokenRecord {
            key_id: id.key_id(),
            root_key,
            token_id: *id.token_id(),
            payment_hash: invoice.payment_hash,
            service: policy.service.to_string(),
            price,
            invoice: invoice.bolt11.clone(),
            created_at: now,
            invoice_expires_at: now.saturating_add(o.invoice_expiry.as_secs() as i64),
        };
        self.inner.store.insert(record).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot store a root key; answering 503");
            unavailable("the token store cannot be reached")
        })?;
        let challenge = Challenge::new(macaroon, invoice.bolt11).map_err(|e| {
            tracing::error!(error = %e, "the backend returned an unusable invoice");
            unavailable("the Lightning backend returned an unusable invoice")
        })?;
        metrics::counter!("l402_challenges_minted_total", "service" => policy.service.to_string())
            .increment(1);
        Err(Rejection::PaymentRequired {
            challenge: Box::new(challenge),
            format: o.challenge_format,
        })
    }
}

/// A credential that verified: the token, what its preflight established, and (when the root
/// key came from the cache with its payment recorded) the cache's generation before the lookup
/// and when its entry is due to be read again, on which a [`Verdict`] may rest.
struct Checked {
    token: VerifiedToken,
    prechecked: Prechecked,
    reusable: Option<(u64, Instant)>,
}

/// The request's `Authorization` value when it has exactly one.
fn single_authorization(headers: &http::HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let first = values.next()?;
    values.next().is_none().then(|| first.as_bytes())
}

/// A request allowed through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// With a verified token.
    Token(VerifiedToken),
    /// Free (its price came out as zero).
    Free,
}

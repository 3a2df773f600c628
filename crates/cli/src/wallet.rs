//! `l402 wallet …`: check a backend's wiring by hand.

use std::time::Duration;

use clap::{Args, Subcommand};
use l402::{
    InvoiceIssuer, InvoicePayer, InvoiceRequest, Msat, PayRequest, PaymentHash, PaymentState,
};
use serde_json::json;

use crate::Failure;
use crate::backend::connect;

/// Wallet subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create an invoice: prints {"bolt11", "payment_hash"}.
    Invoice(InvoiceArgs),
    /// Pay an invoice: prints {"preimage", "amount_msat", "fee_msat"}.
    Pay(PayArgs),
    /// The state of an invoice this backend issued: prints {"state"} (open|settled|expired|cancelled).
    Status(StatusArgs),
    /// What the backend knows about a payment it made: prints {"state", "preimage"?}.
    Payment(StatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InvoiceArgs {
    /// The backend URI (see `l402 --help-backends` in the docs: devnode://, lnbits://, …).
    #[arg(long, env = "L402_BACKEND")]
    backend: String,
    /// Amount in millisatoshis.
    #[arg(long)]
    amount_msat: u64,
    /// Description.
    #[arg(long, default_value = "l402 wallet invoice")]
    memo: String,
    /// Expiry in seconds.
    #[arg(long, default_value_t = 3600)]
    expiry_secs: u64,
}

#[derive(Debug, Args)]
pub(crate) struct PayArgs {
    /// The BOLT11 invoice.
    bolt11: String,
    /// The backend URI.
    #[arg(long, env = "L402_BACKEND")]
    backend: String,
    /// Most routing fee to pay, in millisatoshis.
    #[arg(long, default_value_t = 10_000)]
    max_fee_msat: u64,
    /// How long to wait for the payment, seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The payment hash, hex.
    payment_hash: String,
    /// The backend URI.
    #[arg(long, env = "L402_BACKEND")]
    backend: String,
}

fn hash(s: &str) -> Result<PaymentHash, Failure> {
    s.parse()
        .map_err(|e: l402::Error| Failure::invalid(e.to_string()))
}

fn backend_err(e: l402::BackendError) -> Failure {
    Failure::backend(e.to_string())
}

pub(crate) async fn run(cmd: WalletCommand) -> Result<(), Failure> {
    match cmd {
        WalletCommand::Invoice(a) => {
            let b = connect(&a.backend).await?;
            let inv = b
                .issuer
                .create_invoice(
                    InvoiceRequest::new(Msat::new(a.amount_msat), a.memo)
                        .expiry(Duration::from_secs(a.expiry_secs)),
                )
                .await
                .map_err(backend_err)?;
            println!(
                "{}",
                json!({"bolt11": inv.bolt11, "payment_hash": inv.payment_hash.to_hex()})
            );
        }
        WalletCommand::Pay(a) => {
            let b = connect(&a.backend).await?;
            let mut req = PayRequest::new(a.bolt11, Msat::new(a.max_fee_msat));
            req.timeout = Duration::from_secs(a.timeout_secs);
            let paid = b.payer.pay(req).await.map_err(backend_err)?;
            println!(
                "{}",
                json!({"preimage": paid.preimage.to_hex(), "amount_msat": paid.amount.as_u64(), "fee_msat": paid.fee.as_u64()})
            );
        }
        WalletCommand::Status(a) => {
            let b = connect(&a.backend).await?;
            let state = b
                .issuer
                .invoice_state(&hash(&a.payment_hash)?)
                .await
                .map_err(backend_err)?;
            println!("{}", json!({"state": state.as_str()}));
        }
        WalletCommand::Payment(a) => {
            let b = connect(&a.backend).await?;
            let v = match b
                .payer
                .payment(&hash(&a.payment_hash)?)
                .await
                .map_err(backend_err)?
            {
                PaymentState::Succeeded(p) => {
                    json!({"state": "succeeded", "preimage": p.preimage.to_hex(), "amount_msat": p.amount.as_u64(), "fee_msat": p.fee.as_u64()})
                }
                PaymentState::InFlight => json!({"state": "in_flight"}),
                PaymentState::Failed { reason } => json!({"state": "failed", "reason": reason}),
                PaymentState::NotFound => json!({"state": "not_found"}),
            };
            println!("{v}");
        }
    }
    Ok(())
}

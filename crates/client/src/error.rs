//! The client's one error type, grouped the way callers need to react.

use std::fmt;

/// Why a paid request did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Paying would exceed a budget (nothing was paid).
    OverBudget {
        /// Which limit, and by how much.
        reason: String,
    },
    /// The challenge was refused before paying: amountless, another network, expired, not
    /// bound to the macaroon, or not the advertised price (nothing was paid).
    ChallengeRefused {
        /// What is wrong with it.
        reason: String,
    },
    /// The payment failed (nothing is owed; a later attempt may pay).
    PaymentFailed {
        /// The wallet's reason.
        reason: String,
    },
    /// A payment for this resource is still unresolved; it will be resumed, never paid again.
    PaymentPending {
        /// The payment hash, hex.
        payment_hash: String,
        /// What is known.
        reason: String,
    },
    /// The server refused the credential we paid for.
    CredentialRefused {
        /// The HTTP status it answered.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The server could not be reached, or the connection failed.
    Network {
        /// What happened.
        reason: String,
    },
    /// The server's answer is not usable (a 402 without an L402 challenge, …).
    Protocol {
        /// What is wrong.
        reason: String,
    },
    /// The local token store failed.
    Store {
        /// What happened.
        reason: String,
    },
    /// The request itself is invalid (bad URL, …).
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
}

impl ClientError {
    /// A stable exit code for command-line tools: 10 over budget, 11 payment failed or pending,
    /// 12 credential refused, 13 network, 14 challenge refused, 15 protocol, 16 store,
    /// 1 invalid request.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::OverBudget { .. } => 10,
            ClientError::PaymentFailed { .. } | ClientError::PaymentPending { .. } => 11,
            ClientError::CredentialRefused { .. } => 12,
            ClientError::Network { .. } => 13,
            ClientError::ChallengeRefused { .. } => 14,
            ClientError::Protocol { .. } => 15,
            ClientError::Store { .. } => 16,
            ClientError::InvalidRequest { .. } => 1,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::OverBudget { reason } => write!(f, "over budget, not paying: {reason}"),
            ClientError::ChallengeRefused { reason } => {
                write!(f, "refusing to pay this challenge: {reason}")
            }
            ClientError::PaymentFailed { reason } => write!(f, "payment failed: {reason}"),
            ClientError::PaymentPending {
                payment_hash,
                reason,
            } => write!(
                f,
                "payment {payment_hash} is still unresolved ({reason}); it will be resumed, not paid again"
            ),
            ClientError::CredentialRefused { status, message } => write!(
                f,
                "the server refused the paid credential (HTTP {status}): {message}"
            ),
            ClientError::Network { reason } => write!(f, "network error: {reason}"),
            ClientError::Protocol { reason } => {
                write!(f, "unusable answer from the server: {reason}")
            }
            ClientError::Store { reason } => write!(f, "token store: {reason}"),
            ClientError::InvalidRequest { reason } => write!(f, "invalid request: {reason}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<sqlx::Error> for ClientError {
    fn from(e: sqlx::Error) -> Self {
        ClientError::Store {
            reason: e.to_string(),
        }
    }
}

//! `l402`: the command-line face of the l402 toolkit.
//!
//! This binary is the composition root: the only crate that knows every adapter. Today it offers
//! the token tools (`l402 token decode|mint|attenuate|verify`) for anyone debugging L402.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod token;

/// L402 (HTTP 402 + Lightning) toolkit.
#[derive(Debug, Parser)]
#[command(name = "l402", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode, mint, attenuate and verify L402 tokens (macaroons).
    #[command(subcommand)]
    Token(token::TokenCommand),
}

/// A failure to report: one line on stderr and a distinct exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Exit code.
    code: u8,
    /// One-line message.
    message: String,
}

impl Failure {
    /// The command could not do its job because the input is bad (exit 1).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token(cmd) => token::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("l402: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

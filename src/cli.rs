//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "sealdesk",
    version,
    about = "Terminal workstation for TPM-sealed SEC-006 decision chains",
    long_about = "Terminal workstation for TPM-sealed SEC-006 decision chains.\n\nWith a PATH and no command, opens the interactive view of the chain. PATH is a chain file or a directory holding decisions_sealed.jsonl.\n\nThe HMAC secret comes from the SEALDESK_HMAC_SECRET environment variable or --secret-file, never from the command line; without one the public development key is used."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Chain file, or a directory holding decisions_sealed.jsonl, to open in the interactive view.
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify a chain and print a report; exit 0 when valid, 1 on errors, 2 when it could not verify.
    Verify(VerifyArgs),
    /// Open the interactive view on a chain (same as `sealdesk PATH`).
    Open(OpenArgs),
    /// Open the interactive view on a working copy of a bundled demo chain that grows live.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// File whose contents are the HMAC secret (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", global = true)]
    pub secret_file: Option<PathBuf>,
    /// PEM file with the TPM signing public key(s) to check tpm entries against (not pinned).
    #[arg(long, value_name = "FILE", global = true)]
    pub tpm_pubkey: Vec<PathBuf>,
    /// File of pinned key fingerprints (sha256:HEX lines) or PEM public keys; must be outside the chain's directory.
    #[arg(long, value_name = "FILE", global = true)]
    pub trusted_keys: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Chain file, or a directory holding decisions_sealed.jsonl.
    pub path: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Chain file, or a directory holding decisions_sealed.jsonl.
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds between the decisions the demo writer appends.
    #[arg(long, default_value_t = 4)]
    pub interval: u64,
}

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
    /// TCTI of the TPM that the view's seal form, PCR pane and quote pane use (default: SEALDESK_TCTI, TPM2TOOLS_TCTI, TCTI, then device:/dev/tpmrm0).
    #[arg(long, value_name = "TCTI")]
    pub tcti: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify a chain and print a report; exit 0 when valid, 1 on errors, 2 when it could not verify.
    Verify(VerifyArgs),
    /// Open the interactive view on a chain (same as `sealdesk PATH`).
    Open(OpenArgs),
    /// Open the interactive view on a working copy of a bundled demo chain that grows live.
    Demo(DemoArgs),
    /// Seal one decision onto a chain (TPM mode unless --mode software); exit 0 sealed, 1 rejected, 2 on errors.
    Seal(SealArgs),
    /// Quote the chain's PCR with the TPM attestation key and compare it with the chain head; exit 0 anchored, 1 otherwise.
    Quote(QuoteArgs),
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
    /// Compare the head with the live TPM: read the PCR and re-create the signing key, which pins it.
    #[arg(long)]
    pub anchor: bool,
    #[command(flatten)]
    pub tpm: TpmArgs,
}

/// Where the TPM is and which PCR holds the chain.
#[derive(Debug, Clone, Args)]
pub struct TpmArgs {
    /// TCTI of the TPM, e.g. swtpm:host=127.0.0.1,port=2321 (default: SEALDESK_TCTI, TPM2TOOLS_TCTI, TCTI, then device:/dev/tpmrm0).
    #[arg(long, value_name = "TCTI")]
    pub tcti: Option<String>,
    /// PCR of the SHA-256 bank that the chain extends (0 to 23).
    #[arg(long, value_name = "N", default_value_t = 23, value_parser = clap::value_parser!(u8).range(0..=23))]
    pub pcr: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SealModeArg {
    /// Sign with the TPM signing key and extend the TPM's PCR.
    Tpm,
    /// Sign with HMAC-SHA256 (SEALDESK_HMAC_SECRET or --secret-file); no TPM is used.
    Software,
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// Chain file, or a directory (its decisions_sealed.jsonl is created when missing).
    pub path: PathBuf,
    /// The entry's action, e.g. ingest.
    #[arg(long)]
    pub action: String,
    /// The entry's decision: allow, deny or escalate.
    #[arg(long)]
    pub decision: String,
    /// Why the decision was made.
    #[arg(long)]
    pub reason: String,
    #[arg(long, value_name = "ID", default_value = "")]
    pub event_id: String,
    #[arg(long, value_name = "ID", default_value = "")]
    pub incident_id: String,
    #[arg(long, default_value = "")]
    pub operator: String,
    /// Entry id (default: DEC-<unix nanoseconds>).
    #[arg(long)]
    pub id: Option<String>,
    /// Signing mode; software mode must be chosen explicitly.
    #[arg(long, value_enum, default_value_t = SealModeArg::Tpm)]
    pub mode: SealModeArg,
    #[command(flatten)]
    pub tpm: TpmArgs,
    /// When the PCR diverges from the head, reset it and start a new segment.
    #[arg(long)]
    pub new_segment: bool,
    /// Seal onto a head with error findings, or add a changed TPM key to the key file.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for another process that holds the chain's lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub lock_timeout: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// Chain file, or a directory holding decisions_sealed.jsonl.
    pub path: PathBuf,
    /// Directory to write quote.msg, quote.sig, quote.pcrs, quote.nonce and ak.pub.pem for tpm2_checkquote.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub tpm: TpmArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Chain file, or a directory holding decisions_sealed.jsonl.
    pub path: PathBuf,
    /// TCTI of the TPM that the view's seal form, PCR pane and quote pane use (default: SEALDESK_TCTI, TPM2TOOLS_TCTI, TCTI, then device:/dev/tpmrm0).
    #[arg(long, value_name = "TCTI")]
    pub tcti: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds between the decisions the demo writer appends.
    #[arg(long, default_value_t = 4)]
    pub interval: u64,
}

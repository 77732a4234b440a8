//! `sealdesk quote`: a TPM quote over the chain's PCR, verified offline and compared with the chain.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attest::keys::{fingerprint, load_keys_pem, to_pem};
use crate::attest::signature::TPM_ALG_SHA256;
use crate::attest::verify_quote;
use crate::chain::crypto::ZERO32;
use crate::chain::entry::{hex32, parse_hex32};
use crate::chain::finding::{Finding, FindingKind, Severity};
use crate::chain::line::printable;
use crate::cli::{Format, KeyArgs, QuoteArgs};
use crate::seal::anchor::{self, Anchor, ANCHOR_LIMIT};
use crate::seal::{ChainLock, ChainSnapshot};
use crate::tpm::{resolve_tcti, TctiSelection, TpmHandle};
use crate::verify_file::resolve_chain_path;

use super::keys::{load_keys, AK_FILE};

/// Name of the file beside the chain that records every quote, one JSON object a line.
pub const QUOTES_FILE: &str = "sealdesk-quotes.jsonl";

/// Maximum wait for a seal in progress to release the chain's lock.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One line of [`QUOTES_FILE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuoteRecord {
    /// When the quote was taken, RFC 3339 in UTC.
    pub time: String,
    pub nonce: String,
    pub pcr: u8,
    pub pcr_value: String,
    /// TPM clock in milliseconds.
    pub clock: u64,
    /// resetCount and restartCount as quoted; an owner-hierarchy AK obfuscates them,
    /// consistently for the same AK, so they compare only between quotes by one AK.
    pub reset_count: u32,
    pub restart_count: u32,
    pub ak_fingerprint: String,
}

pub fn run(args: &QuoteArgs, key_args: &KeyArgs) -> u8 {
    match quote(args, key_args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("sealdesk quote: {}", printable(&message));
            2
        }
    }
}

/// Returns the directory of the chain file, `.` for a bare file name.
pub fn chain_dir(chain_file: &Path) -> PathBuf {
    match chain_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A quote taken, verified offline and compared with the chain.
pub struct QuoteOutcome {
    pub check: crate::attest::QuoteCheck,
    pub record: QuoteRecord,
    pub relation: Anchor,
    /// Attestation key, anchor and rollback findings.
    pub findings: Vec<Finding>,
    pub chain: ChainSnapshot,
    /// The marshalled TPMS_ATTEST.
    pub attest: Vec<u8>,
    /// The marshalled TPMT_SIGNATURE.
    pub signature: Vec<u8>,
    pub pcrs: Vec<[u8; 32]>,
    pub nonce: [u8; 32],
    pub ak: p256::ecdsa::VerifyingKey,
}

impl QuoteOutcome {
    /// True when the quote verifies and no finding is an error.
    pub fn is_valid(&self) -> bool {
        self.check.is_valid() && !self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Quotes PCR `pcr` of the TPM at `tcti` with a fresh nonce, verifies the quote, compares
/// it with the chain and, when the quote verifies, appends it to [`QUOTES_FILE`].
///
/// The caller holds the chain's lock, so that no seal runs between the quote and the
/// chain read.
pub fn take_quote(
    chain_file: &Path,
    keys: crate::chain::verify::VerifyKeys,
    tcti: TctiSelection,
    pcr: u8,
) -> Result<QuoteOutcome, String> {
    let dir = chain_dir(chain_file);
    let tpm = TpmHandle::connect(tcti).map_err(|e| e.to_string())?;
    let tcti_text = tpm.tcti().tcti.clone();
    let tpm_error = |step: &str, e: crate::tpm::TpmError| {
        format!("TPM {step} failed on TCTI `{tcti_text}`: {e}")
    };
    let mut nonce = [0u8; 32];
    getrandom::getrandom(&mut nonce).map_err(|e| format!("cannot get a random nonce: {e}"))?;
    let ak = tpm
        .ak_public()
        .map_err(|e| tpm_error("attestation key creation", e))?;
    let (attest, signature, pcrs) = tpm.quote(pcr, nonce).map_err(|e| tpm_error("quote", e))?;
    drop(tpm);

    let selection = [u32::from(pcr)];
    let check = verify_quote(
        &ak,
        &attest,
        &signature,
        &nonce,
        &pcrs,
        (TPM_ALG_SHA256, &selection),
    );
    let pcr_value = pcrs.first().copied().unwrap_or(ZERO32);
    let ak_fingerprint = fingerprint(&ak);

    let mut findings = Vec::new();
    let ak_file = dir.join(AK_FILE);
    if ak_file.exists() {
        let known = load_keys_pem(&ak_file)
            .map_err(|e| format!("cannot read {}: {e}", ak_file.display()))?;
        if !known.iter().any(|k| fingerprint(k) == ak_fingerprint) {
            findings.push(Finding::new(
                FindingKind::KeyChanged,
                format!("the TPM's attestation key {ak_fingerprint} is not in {}: the TPM was cleared, or this is another machine", ak_file.display()),
            ));
        }
    }

    let chain = ChainSnapshot::load(chain_file, keys).map_err(|e| e.to_string())?;
    let relation = anchor::compare(&pcr_value, &chain);
    findings.extend(anchor::finding(
        &relation, &pcr_value, pcr, &chain, "a quote",
    ));

    let clock = check.clock_info();
    let record = QuoteRecord {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        nonce: hex::encode(nonce),
        pcr,
        pcr_value: hex32(&pcr_value),
        clock: clock.map_or(0, |c| c.clock),
        reset_count: clock.map_or(0, |c| c.reset_count),
        restart_count: clock.map_or(0, |c| c.restart_count),
        ak_fingerprint,
    };
    if check.is_valid() {
        let quotes_file = dir.join(QUOTES_FILE);
        let earlier = read_quote_log(&quotes_file)?;
        findings.extend(rollback_findings(&earlier, &record, &relation, &chain));
        append_quote_log(&quotes_file, &record)?;
    }
    Ok(QuoteOutcome {
        check,
        record,
        relation,
        findings,
        chain,
        attest,
        signature,
        pcrs,
        nonce,
        ak,
    })
}

fn quote(args: &QuoteArgs, key_args: &KeyArgs) -> Result<u8, String> {
    let chain_file = resolve_chain_path(&args.path).map_err(|e| e.to_string())?;
    let keys = load_keys(key_args, &chain_file)?;

    let _lock =
        ChainLock::acquire_for_reading(&chain_file, LOCK_TIMEOUT).map_err(|e| e.to_string())?;
    let tcti = resolve_tcti(args.tpm.tcti.as_deref());
    let outcome = take_quote(&chain_file, keys, tcti, args.tpm.pcr)?;

    if let Some(out) = &args.out {
        write_out_files(
            out,
            &outcome.attest,
            &outcome.signature,
            &outcome.pcrs,
            &outcome.nonce,
            &outcome.ak,
        )?;
    }

    let valid = outcome.is_valid();
    let QuoteOutcome {
        check,
        record,
        relation,
        findings,
        chain,
        ..
    } = &outcome;
    match args.format {
        Format::Json => {
            let checks: serde_json::Map<String, serde_json::Value> = check
                .checks()
                .iter()
                .map(|(name, c)| ((*name).to_owned(), serde_json::Value::String(c.to_string())))
                .collect();
            let value = serde_json::json!({
                "file": chain_file.display().to_string(),
                "valid": valid,
                "quote_valid": check.is_valid(),
                "checks": checks,
                "anchored": matches!(relation, Anchor::Anchored { .. }),
                "quote": record,
                "head": chain.report.head,
                "findings": findings,
            });
            println!("{value:#}");
        }
        Format::Text => print_text(check, record, relation, findings, chain, valid),
    }
    Ok(if valid { 0 } else { 1 })
}

fn print_text(
    check: &crate::attest::QuoteCheck,
    record: &QuoteRecord,
    relation: &Anchor,
    findings: &[Finding],
    chain: &ChainSnapshot,
    valid: bool,
) {
    println!(
        "{}: quote of PCR {} by AK {}",
        if valid { "VALID" } else { "INVALID" },
        record.pcr,
        record.ak_fingerprint
    );
    for (name, c) in check.checks() {
        println!("  {name:<14} {c}");
    }
    println!("  PCR {} = {}", record.pcr, record.pcr_value);
    println!(
        "  clock {} ms, resetCount {}, restartCount {}",
        record.clock, record.reset_count, record.restart_count
    );
    if let Anchor::Anchored { head } = relation {
        match head {
            Some(index) => println!("anchored: the PCR equals the pcr_value of the head (entry {index}); {ANCHOR_LIMIT}"),
            None => println!(
                "the chain is empty, so it has no head; PCR {} is zero, which is consistent with nothing sealed through it",
                record.pcr
            ),
        }
    } else if let Some(head) = &chain.report.head {
        println!("head: entry {} pcr_value {}", head.index, head.pcr_value);
    }
    for f in findings {
        println!(
            "{} {}: {}",
            f.severity.as_str(),
            f.kind.as_str(),
            printable(&f.message)
        );
    }
}

/// Reads the records of [`QUOTES_FILE`] at `path`; a missing file has none.
pub fn read_quote_log(path: &Path) -> Result<Vec<QuoteRecord>, String> {
    match std::fs::read_to_string(path) {
        // Lines that do not parse (a torn last line) are skipped: they hold no usable quote.
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn append_quote_log(path: &Path, record: &QuoteRecord) -> Result<(), String> {
    let mut line =
        serde_json::to_vec(record).map_err(|e| format!("cannot encode the quote record: {e}"))?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Finds earlier quotes whose PCR value is not the pcr_value of an entry at or before the
/// entry the new PCR equals, which means the PCR went backwards: it was reset and replayed.
/// Only quotes by the same AK with the same reset and restart counts are compared, because
/// only then no TPM reset or restart lies between them.
pub fn rollback_findings(
    earlier: &[QuoteRecord],
    new: &QuoteRecord,
    relation: &Anchor,
    chain: &ChainSnapshot,
) -> Vec<Finding> {
    let reached = match relation {
        Anchor::Anchored { head: Some(index) } => *index,
        Anchor::Behind { index, .. } => *index,
        // An empty chain or a PCR that matches no entry gives no position to compare.
        _ => return Vec::new(),
    };
    let mut findings = Vec::new();
    for old in earlier {
        if old.ak_fingerprint != new.ak_fingerprint
            || old.reset_count != new.reset_count
            || old.restart_count != new.restart_count
            || old.pcr != new.pcr
        {
            continue;
        }
        let Some((old_pcr, _)) = parse_hex32(&old.pcr_value) else {
            continue;
        };
        if old_pcr == ZERO32 {
            continue;
        }
        let on_path = (0..=reached).any(|i| chain.entry(i).and_then(|e| e.pcr) == Some(old_pcr));
        if !on_path {
            findings.push(
                Finding::new(
                    FindingKind::QuoteRollback,
                    format!(
                        "the quote of {} (same resetCount {} and restartCount {}) saw PCR {} = {}, which is not the pcr_value of any entry up to entry {reached}, where the PCR is now: the PCR was reset and replayed without a TPM restart",
                        old.time, old.reset_count, old.restart_count, old.pcr, old.pcr_value
                    ),
                )
                .values(old.pcr_value.clone(), new.pcr_value.clone()),
            );
        }
    }
    findings
}

/// Writes the files `tpm2_checkquote` reads into `out`, creating it when missing.
pub fn write_out_files(
    out: &Path,
    attest: &[u8],
    signature: &[u8],
    pcrs: &[[u8; 32]],
    nonce: &[u8; 32],
    ak: &p256::ecdsa::VerifyingKey,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let pem = to_pem(ak).map_err(|e| format!("cannot encode the AK as PEM: {e}"))?;
    let files: [(&str, Vec<u8>); 5] = [
        ("quote.msg", attest.to_vec()),
        ("quote.sig", signature.to_vec()),
        ("quote.pcrs", pcrs.concat()),
        ("quote.nonce", hex::encode(nonce).into_bytes()),
        ("ak.pub.pem", pem.into_bytes()),
    ];
    for (name, bytes) in files {
        let path = out.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

//! `sealdesk verify`: the report for scripts and people.

use crate::attest::keys::fingerprint;
use crate::chain::finding::{Finding, FindingKind, Severity};
use crate::chain::line::printable;
use crate::chain::report::Report;
use crate::chain::verify::{TpmKey, VerifyKeys};
use crate::cli::{Format, KeyArgs, VerifyArgs};
use crate::seal::anchor::{self, Anchor, ANCHOR_LIMIT};
use crate::seal::{ChainLock, ChainSnapshot};
use crate::tpm::{resolve_tcti, TpmHandle};
use crate::verify_file::{resolve_chain_path, verify_file};

use super::keys::load_keys;

/// Maximum wait with --anchor for a seal in progress to release the chain's lock.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn run(args: &VerifyArgs, key_args: &KeyArgs) -> u8 {
    crate::verify_file::limit_malloc_arenas();
    let fail = |message: &str| fail(args.format, &args.path, message);
    let path = match resolve_chain_path(&args.path) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let mut keys = match load_keys(key_args, &path) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let _lock = if args.anchor {
        match ChainLock::acquire_for_reading(&path, LOCK_TIMEOUT) {
            Ok(lock) => lock,
            Err(e) => return fail(&e.to_string()),
        }
    } else {
        None
    };
    let tpm = if args.anchor {
        let tpm = match TpmHandle::connect(resolve_tcti(args.tpm.tcti.as_deref())) {
            Ok(tpm) => tpm,
            Err(e) => return fail(&format!("--anchor needs the TPM: {e}")),
        };
        match tpm.signing_public() {
            Ok(signing) => pin_live_key(&mut keys, signing, &tpm.tcti().tcti),
            Err(e) => {
                return fail(&format!(
                    "--anchor: re-creating the signing key on TCTI `{}` failed: {e}",
                    tpm.tcti().tcti
                ))
            }
        }
        Some(tpm)
    } else {
        None
    };
    let engine = match verify_file(&path, keys, &mut |_| {}) {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string()),
    };
    let mut report = engine.report(&path.display().to_string());
    let mut anchored_line = None;
    match &tpm {
        Some(tpm) => {
            let pcr = match tpm.read_pcr(args.tpm.pcr) {
                Ok(pcr) => pcr,
                Err(e) => {
                    return fail(&format!(
                        "--anchor: reading PCR {} on TCTI `{}` failed: {e}",
                        args.tpm.pcr,
                        tpm.tcti().tcti
                    ))
                }
            };
            let chain = match ChainSnapshot::from_engine(&path, &engine) {
                Ok(chain) => chain,
                Err(e) => return fail(&e.to_string()),
            };
            let relation = anchor::compare(&pcr, &chain);
            if let Anchor::Anchored { head } = relation {
                anchored_line = Some(match head {
                    Some(index) => format!("anchored: PCR {} equals the pcr_value of the head (entry {index}); {ANCHOR_LIMIT}", args.tpm.pcr),
                    None => format!("anchored: the chain is empty and PCR {} is zero", args.tpm.pcr),
                });
            }
            let found = anchor::finding(&relation, &pcr, args.tpm.pcr, &chain, "a PCR read");
            add_findings(&mut report, found.into_iter().collect());
        }
        None if report.entries > 0 => add_findings(
            &mut report,
            vec![Finding::new(
                FindingKind::TailUnanchored,
                "no TPM quote or PCR read was compared with the head: a cut at the end of the file cannot be detected; run with --anchor on the sealing machine, or `sealdesk quote`",
            )],
        ),
        None => {}
    }

    let text = match args.format {
        Format::Json => report.to_json(),
        Format::Text => report.to_text(),
    };
    let mut out = text;
    out.push('\n');
    if let Some(line) = anchored_line {
        match args.format {
            Format::Json => eprintln!("{line}"),
            Format::Text => {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    if let Err(code) = write_stdout(&out) {
        return code;
    }
    if report.valid {
        0
    } else {
        1
    }
}

/// Writes the report; a closed pipe (`| head`) ends quietly, any other
/// write error is reported and exits 2.
fn write_stdout(text: &str) -> Result<(), u8> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(0),
        Err(e) => {
            eprintln!("sealdesk verify: cannot write the report: {e}");
            Err(2)
        }
    }
}

/// Reports why the chain could not be verified, as JSON on stdout too when
/// JSON was requested, and returns exit code 2.
fn fail(format: Format, path: &std::path::Path, message: &str) -> u8 {
    let message = printable(message);
    eprintln!("sealdesk verify: {message}");
    if format == Format::Json {
        let object = serde_json::json!({
            "file": printable(&path.display().to_string()),
            "error": message,
        });
        let _ = write_stdout(&format!(
            "{}\n",
            crate::chain::report::escape_json_invisible(&object.to_string())
        ));
    }
    2
}

/// Marks the key the live TPM re-created as pinned, adding it when no key file had it.
fn pin_live_key(keys: &mut VerifyKeys, signing: p256::ecdsa::VerifyingKey, tcti: &str) {
    let live = fingerprint(&signing);
    if !keys.pins.contains(&live) {
        keys.pins.push(live.clone());
    }
    match keys.tpm.iter_mut().find(|k| k.fingerprint == live) {
        Some(key) => key.pinned = true,
        None => keys.tpm.push(TpmKey {
            key: signing,
            fingerprint: live.clone(),
            pinned: true,
            source: format!("the live TPM at {tcti}"),
        }),
    }
    if !keys.pins.contains(&live) {
        keys.pins.push(live);
    }
}

/// Adds findings to a report, keeping them sorted by offset with chain-level ones last,
/// and recomputes `valid`.
fn add_findings(report: &mut Report, findings: Vec<Finding>) {
    report.findings.extend(findings);
    report
        .findings
        .sort_by_key(|f| f.offset.unwrap_or(u64::MAX));
    report.valid = !report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error);
}

//! Every reference vector verified by `sealdesk verify`, with the exact
//! findings SPEC.md requires (the reference's own verdict is often wrong).

mod common;

use common::chain::{
    assert_findings, at, chain_level, on_line, run_verify, vectors_dir, Fx, DEV_KEY,
};
use serde_json::Value;

const OPS_KEY: &str = "s3cr3t-ops-key";

/// What SPEC.md requires of one vector.
struct Case {
    vector: &'static str,
    secret: &'static str,
    entries: u64,
    lines: u64,
    segments: Vec<(u64, u64)>,
    findings: Vec<Fx>,
}

fn dev_key() -> Fx {
    chain_level("default_dev_key")
}

/// A 50-entry plain-derived vector: dev-key signatures verify, so `default_dev_key`.
fn plain_like(vector: &'static str, mut findings: Vec<Fx>) -> Case {
    findings.push(dev_key());
    Case {
        vector,
        secret: DEV_KEY,
        entries: 50,
        lines: 50,
        segments: vec![(0, 49)],
        findings,
    }
}

// One push per vector keeps each case's comment next to it.
#[allow(clippy::vec_init_then_push)]
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    cases.push(Case {
        vector: "bs-ff-go119",
        secret: DEV_KEY,
        entries: 4,
        lines: 4,
        segments: vec![(0, 3)],
        // Written by Go 1.19 with \u0008 / \u000c: the raw bytes verify.
        findings: vec![dev_key()],
    });
    cases.push(Case {
        vector: "custom-key",
        secret: OPS_KEY,
        entries: 20,
        lines: 20,
        segments: vec![(0, 19)],
        findings: vec![],
    });
    cases.push(Case {
        vector: "custom-key-wrong-secret",
        secret: DEV_KEY,
        entries: 20,
        lines: 20,
        segments: vec![(0, 19)],
        findings: (0..20).map(|i| at("signature_invalid", i, i + 1)).collect(),
    });
    cases.push(Case {
        vector: "empty",
        secret: DEV_KEY,
        entries: 0,
        lines: 0,
        segments: vec![],
        findings: vec![chain_level("empty_chain")],
    });

    // CRLF on every line is a rewrite of each entry line; the blank, "   \r"
    // and lone "\r" lines are blank lines, also `rewritten`, with no index.
    let blank_lines = [6u64, 8, 14, 25];
    let mut crlf = Vec::new();
    let mut index = 0;
    for line in 1..=54u64 {
        if blank_lines.contains(&line) {
            crlf.push(on_line("rewritten", line));
        } else {
            crlf.push(at("rewritten", index, line));
            index += 1;
        }
    }
    crlf.push(dev_key());
    cases.push(Case {
        vector: "equiv-crlf-blank-lines",
        secret: DEV_KEY,
        entries: 50,
        lines: 54,
        segments: vec![(0, 49)],
        findings: crlf,
    });

    let mut all_u: Vec<Fx> = (0..23).map(|i| at("rewritten", i, i + 1)).collect();
    all_u.push(dev_key());
    cases.push(Case {
        vector: "equiv-escapes-all-u",
        secret: DEV_KEY,
        entries: 23,
        lines: 23,
        segments: vec![(0, 22)],
        findings: all_u,
    });
    let mut minimal: Vec<Fx> = [0u64, 3, 4, 8, 9, 10, 13, 14, 17, 19, 20, 21]
        .iter()
        .map(|&i| at("rewritten", i, i + 1))
        .collect();
    minimal.push(dev_key());
    cases.push(Case {
        vector: "equiv-escapes-minimal",
        secret: DEV_KEY,
        entries: 23,
        lines: 23,
        segments: vec![(0, 22)],
        findings: minimal,
    });
    // Entry 4's entry bytes are untouched but its line's key order is not.
    cases.push(plain_like(
        "equiv-key-order",
        vec![at("rewritten", 3, 4), at("rewritten", 4, 5)],
    ));
    cases.push(plain_like(
        "equiv-optional-empty",
        vec![at("rewritten", 2, 3), at("rewritten", 3, 4)],
    ));
    cases.push(plain_like(
        "equiv-timestamp-forms",
        vec![
            at("rewritten", 14, 15),
            at("rewritten", 15, 16),
            at("rewritten", 16, 17),
            at("rewritten", 18, 19),
        ],
    ));
    // "extra_field" was added inside entry after sealing: only the re-encoding
    // verifies, so it is unsealed; the top-level "note" is a rewrite.
    cases.push(plain_like(
        "equiv-unknown-fields",
        vec![at("unsealed_field", 8, 9), at("rewritten", 8, 9)],
    ));
    cases.push(plain_like(
        "equiv-whitespace",
        vec![at("rewritten", 7, 8), at("rewritten", 8, 9)],
    ));
    cases.push(Case {
        vector: "escaping",
        secret: DEV_KEY,
        entries: 23,
        lines: 23,
        segments: vec![(0, 22)],
        findings: vec![dev_key()],
    });
    cases.push(Case {
        vector: "fixed-timestamps",
        secret: DEV_KEY,
        entries: 16,
        lines: 16,
        segments: vec![(0, 15)],
        findings: vec![dev_key()],
    });
    cases.push(plain_like("plain", vec![]));
    cases.push(Case {
        vector: "restart",
        secret: DEV_KEY,
        entries: 20,
        lines: 20,
        segments: vec![(0, 9), (10, 19)],
        findings: vec![at("pcr_reset", 10, 11), dev_key()],
    });
    // A BOM is a rewrite, not an error: entry 0 still counts.
    cases.push(plain_like("tamper-bom-prefix", vec![at("rewritten", 0, 1)]));
    cases.push(plain_like(
        "tamper-chain-idx-12",
        vec![at("chain_idx_mismatch", 12, 13)],
    ));

    // Entry 30 deleted: old entry 31 (now index 30) names no entry; its
    // derived values are checked against the entry before it in the file.
    let mut deleted = plain_like(
        "tamper-delete-30",
        vec![
            at("link_broken", 30, 31),
            at("pcr_mismatch", 30, 31),
            at("chain_idx_mismatch", 30, 31),
        ],
    );
    deleted.entries = 49;
    deleted.lines = 49;
    deleted.segments = vec![(0, 48)];
    cases.push(deleted);

    let mut duplicated = plain_like("tamper-duplicate-25", vec![at("duplicate_entry", 26, 27)]);
    duplicated.entries = 51;
    duplicated.lines = 51;
    duplicated.segments = vec![(0, 50)];
    cases.push(duplicated);

    // previous_hash "genesis" -> 64 zeros without resealing: the content
    // changed and the first entry does not name genesis.
    cases.push(plain_like(
        "tamper-genesis-prev",
        vec![at("hash_mismatch", 0, 1), at("genesis_invalid", 0, 1)],
    ));
    // The stored hash feeds the signature and PCR replay, so both fail at 5;
    // entry 6 names the original hash, which is no entry any more.
    cases.push(plain_like(
        "tamper-hash-5",
        vec![
            at("hash_mismatch", 5, 6),
            at("signature_invalid", 5, 6),
            at("pcr_mismatch", 5, 6),
            at("link_broken", 6, 7),
        ],
    ));
    // The inserted line is an unterminated record (a fragment) and the record
    // on the next line links to the entry before it: crash residue.
    let mut middle = plain_like(
        "tamper-malformed-line-middle",
        vec![on_line("crash_residue", 26)],
    );
    middle.lines = 51;
    cases.push(middle);
    let mut then_reason = plain_like(
        "tamper-malformed-then-reason-30",
        vec![on_line("crash_residue", 21), at("hash_mismatch", 30, 32)],
    );
    then_reason.lines = 51;
    cases.push(then_reason);
    cases.push(plain_like(
        "tamper-pcr-20",
        vec![at("pcr_mismatch", 20, 21)],
    ));
    cases.push(plain_like(
        "tamper-reason-17",
        vec![at("hash_mismatch", 17, 18)],
    ));
    // Resealed with the key: only the next entry's link (and its PCR, which
    // follows from the old value) shows it.
    cases.push(plain_like(
        "tamper-resealed-17",
        vec![at("link_broken", 18, 19), at("pcr_mismatch", 18, 19)],
    ));
    // "tpm" without a public key cannot be checked; the switch back to a
    // dev-key software entry is a downgrade error.
    cases.push(plain_like(
        "tamper-seal-mode-13",
        vec![
            at("signature_unverifiable", 13, 14),
            at("seal_mode_changed", 13, 14),
            common::chain::fxs("seal_mode_changed", "error", Some(14), Some(15)),
        ],
    ));
    cases.push(plain_like(
        "tamper-signature-40",
        vec![at("signature_invalid", 40, 41)],
    ));
    // Index 10 holds entry 11, which names entry 10 at index 11: out of order.
    cases.push(plain_like(
        "tamper-swap-10-11",
        vec![
            at("link_broken", 10, 11),
            at("pcr_mismatch", 10, 11),
            at("chain_idx_mismatch", 10, 11),
        ],
    ));
    let mut torn = plain_like("tamper-torn-final-line", vec![on_line("torn_tail", 50)]);
    torn.entries = 49;
    torn.segments = vec![(0, 48)];
    cases.push(torn);
    // Without an anchor a cut tail cannot be detected.
    let mut truncated = plain_like("tamper-truncate-last3", vec![]);
    truncated.entries = 47;
    truncated.lines = 47;
    truncated.segments = vec![(0, 46)];
    cases.push(truncated);
    // chain_idx "22" is a wrong type: malformed_line with the entry's index,
    // and the entry still counts and verifies on its raw bytes.
    cases.push(plain_like(
        "tamper-unparseable-entry-22",
        vec![at("malformed_line", 22, 23)],
    ));
    cases
}

fn check(case: &Case) {
    let path = vectors_dir()
        .join(case.vector)
        .join("decisions_sealed.jsonl");
    let run = run_verify(&path, Some(case.secret), "json");
    let report = run.report();
    let label = case.vector;

    assert_findings(label, &report, run.code, &case.findings);
    assert_eq!(
        report["entries"].as_u64(),
        Some(case.entries),
        "{label}: entries"
    );
    assert_eq!(report["lines"].as_u64(), Some(case.lines), "{label}: lines");

    if case.entries == 0 {
        assert!(report["head"].is_null(), "{label}: head of an empty chain");
    } else {
        assert_eq!(
            report["head"]["index"].as_u64(),
            Some(case.entries - 1),
            "{label}: head.index"
        );
    }
    let segments: Vec<(u64, u64)> = report["segments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["first_index"].as_u64().unwrap_or(u64::MAX),
                        s["last_index"].as_u64().unwrap_or(u64::MAX),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(segments, case.segments, "{label}: segments");
    assert_eq!(
        report["branches"].as_array().map(Vec::len),
        Some(0),
        "{label}: branches"
    );
}

#[test]
fn every_vector_has_a_case() {
    let index: Value = match std::fs::read(vectors_dir().join("index.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(e) => panic!("cannot read index.json: {e}"),
    };
    let listed: Vec<String> = index
        .as_array()
        .unwrap_or_else(|| panic!("index.json is not a list"))
        .iter()
        .filter_map(|v| v["scenario"].as_str().map(str::to_string))
        .collect();
    let covered: Vec<&str> = cases().iter().map(|c| c.vector).collect();
    for name in &listed {
        assert!(
            covered.contains(&name.as_str()),
            "vector {name} has no case"
        );
        let dir = vectors_dir().join(name);
        assert!(
            dir.join("decisions_sealed.jsonl").is_file(),
            "{name}: chain copied"
        );
        assert!(
            dir.join("expected.json").is_file(),
            "{name}: expected.json copied"
        );
    }
    assert_eq!(listed.len(), covered.len(), "cases beyond index.json");
}

#[test]
fn all_vectors_match_spec() {
    let mut failures = Vec::new();
    for case in cases() {
        let result = std::panic::catch_unwind(|| check(&case));
        if let Err(e) = result {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {}", case.vector, message));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn custom_key_with_dev_key_is_signature_invalid() {
    let path = vectors_dir().join("custom-key/decisions_sealed.jsonl");
    let run = run_verify(&path, None, "json");
    let report = run.report();
    let want: Vec<Fx> = (0..20).map(|i| at("signature_invalid", i, i + 1)).collect();
    assert_findings("custom-key without a secret", &report, run.code, &want);
}

#[test]
fn dev_key_reported_even_with_other_secret() {
    // Dev-key signatures still verify under the dev key whatever secret is set.
    let path = vectors_dir().join("plain/decisions_sealed.jsonl");
    let run = run_verify(&path, Some(OPS_KEY), "json");
    let report = run.report();
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["kind"].as_str()).collect())
        .unwrap_or_default();
    assert!(kinds.contains(&"default_dev_key"), "kinds: {kinds:?}");
}

#[test]
fn bom_offset_is_line_start() {
    // Offsets name where the line starts; only residue moves it to the record.
    let path = vectors_dir().join("tamper-bom-prefix/decisions_sealed.jsonl");
    let run = run_verify(&path, None, "json");
    let report = run.report();
    let rewritten = common::chain::of_kind(&report, "rewritten");
    assert_eq!(rewritten.len(), 1);
    assert_eq!(rewritten[0]["offset"].as_u64(), Some(0), "{}", rewritten[0]);
}

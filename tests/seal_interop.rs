//! Software seals appended to a chain written by the Go reference logger, checked by the
//! reference's own verifier.

mod seal_support;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use seal_support::{errors, kinds, lines, seal, text, verify};

/// Builds the reference commands into `out`; returns false, after printing why, when Go is missing.
fn build_reference(out: &Path) -> bool {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("skipping: `go` is not installed, so the Go reference cannot be built");
        return false;
    }
    let Some(reference) = common::reference_dir() else {
        // In CI the reference must be there: a skipped interop test proves nothing.
        assert!(
            std::env::var_os("CI").is_none(),
            "the Go reference source is missing beside the repository"
        );
        eprintln!("skipping: the Go reference source is not beside the repository");
        return false;
    };
    let mut target = out.as_os_str().to_owned();
    target.push("/");
    let output = Command::new("go")
        .current_dir(&reference)
        .args(["build", "-o"])
        .arg(&target)
        .arg("./cmd/...")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .output()
        .expect("run go build");
    assert!(
        output.status.success(),
        "go build failed: {}",
        text(&output)
    );
    true
}

#[test]
fn reference_verifies_software_seals() {
    let bin = tempfile::tempdir().unwrap();
    if !build_reference(bin.path()) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir: PathBuf = work.path().join("chain");
    let output = Command::new(bin.path().join("bigchain"))
        .arg("-dir")
        .arg(&dir)
        .args(["-n", "10"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bigchain failed: {}",
        text(&output)
    );

    for i in 0..5 {
        let output = seal(
            &dir,
            &format!("manual escalation {i} <&>"),
            &["--mode", "software"],
        );
        assert!(output.status.success(), "{}", text(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains("development key"));
    }
    assert_eq!(lines(&dir.join("decisions_sealed.jsonl")).len(), 15);

    let output = Command::new(bin.path().join("verify"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "reference verify: {}",
        text(&output)
    );

    let (code, report) = verify(&dir, &[]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert_eq!(report["entries"], 15);
    assert!(
        !kinds(&report)
            .iter()
            .any(|(kind, _, _)| kind == "pcr_reset" || kind == "pcr_mismatch"),
        "{:?}",
        kinds(&report)
    );
}

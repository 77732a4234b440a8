//! Feeds arbitrary bytes through the verifier engine as a whole chain file
//! and checks the report's invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdesk::chain::reader::split_lines;
use sealdesk::chain::verify::{Engine, MemorySource, VerifyKeys};

fuzz_target!(|data: &[u8]| {
    let (lines, used) = split_lines(data, 0, 1, true);
    assert_eq!(
        used,
        data.len(),
        "split_lines with is_end must consume the whole buffer"
    );

    let source = MemorySource(data);
    let mut engine = Engine::new(VerifyKeys::default());
    for line in &lines {
        engine.push_raw(line.bytes, line.offset, line.has_newline, &source);
    }
    engine.finish();
    let report = engine.report("fuzz");

    assert_eq!(
        report.lines,
        lines.len() as u64,
        "report counts a different number of lines"
    );
    assert!(report.entries <= report.lines, "more entries than lines");
    for finding in &report.findings {
        if let Some(index) = finding.index {
            assert!(
                index < report.entries,
                "finding index {index} out of range for {} entries: {finding:?}",
                report.entries
            );
        }
        if let Some(line) = finding.line {
            assert!(
                (1..=report.lines).contains(&line),
                "finding line {line} out of range for {} lines: {finding:?}",
                report.lines
            );
        }
        if let Some(offset) = finding.offset {
            assert!(
                offset <= data.len() as u64,
                "finding offset {offset} beyond the {}-byte input: {finding:?}",
                data.len()
            );
        }
    }
    // The report sorts by offset and puts findings without one last.
    let keys: Vec<u64> = report
        .findings
        .iter()
        .map(|f| f.offset.unwrap_or(u64::MAX))
        .collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] <= pair[1]),
        "findings not sorted by offset: {keys:?}"
    );

    let text = report.to_text();
    assert!(!text.is_empty(), "text report is empty");
    let json = report.to_json();
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
        panic!("JSON report does not parse: {e}\n{json}");
    }
});

//! Feeds arbitrary bytes to the line analyzer as one line, twice with the
//! same analyzer, and checks that reuse does not change the result.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealdesk::chain::line::LineAnalyzer;
use sealdesk::chain::verify::VerifyKeys;

static KEYS: OnceLock<VerifyKeys> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // The engine passes the analyzer lines without their `\n`, so no line contains one.
    if data.contains(&b'\n') {
        return;
    }
    let keys = KEYS.get_or_init(VerifyKeys::default);
    let mut analyzer = LineAnalyzer::new();
    let first = format!("{:?}", analyzer.analyze(data, keys));
    let second = format!("{:?}", analyzer.analyze(data, keys));
    assert_eq!(
        first, second,
        "a reused analyzer returned a different result"
    );
});

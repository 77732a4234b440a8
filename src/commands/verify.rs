//! `sealdesk verify`: the report for scripts and people.

use crate::chain::line::printable;
use crate::cli::{Format, KeyArgs, VerifyArgs};
use crate::verify_file::{resolve_chain_path, verify_file};

use super::keys::load_keys;

pub fn run(args: &VerifyArgs, key_args: &KeyArgs) -> u8 {
    let path = match resolve_chain_path(&args.path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sealdesk verify: {}", printable(&e.to_string()));
            return 2;
        }
    };
    let keys = match load_keys(key_args, &path) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("sealdesk verify: {}", printable(&e));
            return 2;
        }
    };
    let engine = match verify_file(&path, keys, &mut |_| {}) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sealdesk verify: {}", printable(&e.to_string()));
            return 2;
        }
    };
    let report = engine.report(&path.display().to_string());
    let text = match args.format {
        Format::Json => report.to_json(),
        Format::Text => report.to_text(),
    };
    println!("{text}");
    if report.valid {
        0
    } else {
        1
    }
}

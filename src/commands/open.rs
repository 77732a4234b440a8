//! Opening the interactive view.

use std::path::Path;

use crate::cli::KeyArgs;

/// Opens the view on `path`; `tcti` is the `--tcti` value, if any.
pub fn run(path: &Path, keys: &KeyArgs, tcti: Option<&str>) -> u8 {
    crate::tui::run(path, keys, tcti)
}

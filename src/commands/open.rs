//! Opening the interactive view.

use std::path::Path;

use crate::cli::KeyArgs;

pub fn run(path: &Path, keys: &KeyArgs) -> u8 {
    crate::tui::run(path, keys)
}

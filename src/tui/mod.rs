//! The interactive terminal view.

use std::path::Path;

use crate::cli::KeyArgs;

pub fn run(_path: &Path, _keys: &KeyArgs) -> u8 {
    eprintln!("sealdesk: the interactive view is not built yet");
    2
}

//! The demo workspace.

use crate::cli::DemoArgs;

pub fn run(_args: &DemoArgs) -> u8 {
    eprintln!("sealdesk: the demo is not built yet");
    2
}

//! `sealdesk demo`.

use crate::cli::DemoArgs;

pub fn run(args: &DemoArgs) -> u8 {
    crate::demo::run(args)
}

use std::process::ExitCode;

use clap::Parser;

use sealdesk::cli::{Cli, Command};
use sealdesk::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Verify(args)) => commands::verify::run(&args, &cli.keys),
        Some(Command::Open(args)) => commands::open::run(
            &args.path,
            &cli.keys,
            args.tcti.as_deref().or(cli.tcti.as_deref()),
        ),
        Some(Command::Demo(args)) => commands::demo::run(&args),
        Some(Command::Seal(args)) => commands::seal::run(&args, &cli.keys),
        Some(Command::Quote(args)) => commands::quote::run(&args, &cli.keys),
        None => match cli.path {
            Some(path) => commands::open::run(&path, &cli.keys, cli.tcti.as_deref()),
            None => {
                eprintln!("sealdesk: give a chain file or directory to open, or a command; see `sealdesk --help`");
                2
            }
        },
    };
    ExitCode::from(code)
}

//! sealdesk: verify, browse, live-tail, seal and quote SEC-006 sealed decision chains.

pub mod attest;
pub mod chain;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod seal;
pub mod tail;
pub mod tpm;
pub mod tui;
pub mod verify_file;

//! One module per command; each returns the process exit code.

pub mod demo;
pub mod keys;
pub mod open;
pub mod quote;
pub mod seal;
pub mod verify;

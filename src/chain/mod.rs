//! The SEC-006 chain format and its verification. Nothing here does I/O,
//! drives a terminal or talks to a TPM: it is fed bytes and returns findings.

pub mod crypto;
pub mod entry;
pub mod finding;
pub mod gostr;
pub mod gotime;
pub mod json;
pub mod line;
pub mod reader;
pub mod report;
pub mod text;
pub mod verify;

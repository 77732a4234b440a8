pub mod chain;
pub mod swtpm;

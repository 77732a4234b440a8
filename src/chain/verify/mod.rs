//! The incremental verification engine.
//!
//! Feed it lines in file order (`push_line`), each already analysed by a
//! `LineAnalyzer` (which may run on other threads); it links entries, finds
//! forks, replays PCR values and `chain_idx`, and collects findings. `finish`
//! closes the file (torn tail, pending residue); `report` summarises at any
//! time. Appending lines costs time proportional to the lines appended.
//!
//! Memory per entry is kept small for million-entry chains: a 64-bit prefix
//! of the entry's name, its byte offset and a flag byte, plus a hash table
//! slot. The rare lookups that need more of an earlier entry (a parent that
//! is not the entry just before, a duplicate name) re-read that entry's line
//! through a `LineSource`.

pub mod engine;
pub mod keys;

pub use engine::{Engine, LineSource, MemorySource, NoSource};
pub use keys::{TpmKey, VerifyKeys};

//! Bounds-checked reader for marshalled TPM 2.0 structures, in which every
//! integer is big-endian and every TPM2B is a `u16` size followed by that
//! many bytes.

use thiserror::Error;

/// A structure ended before one of its fields was complete.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field} needs {needed} bytes at offset {offset}, but only {available} remain")]
pub struct Truncated {
    /// Name of the field being read, in TPM 2.0 Part 2 terms.
    pub field: &'static str,
    /// Byte offset of the field from the start of the structure.
    pub offset: usize,
    /// Bytes the field needs.
    pub needed: usize,
    /// Bytes left in the input.
    pub available: usize,
}

/// Cursor over a byte slice. Every read checks the remaining length first, so
/// no input can make it panic.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub(crate) fn take(
        &mut self,
        count: usize,
        field: &'static str,
    ) -> Result<&'a [u8], Truncated> {
        let available = self.remaining();
        if count > available {
            return Err(Truncated {
                field,
                offset: self.offset,
                needed: count,
                available,
            });
        }
        let start = self.offset;
        self.offset += count;
        Ok(&self.bytes[start..self.offset])
    }

    fn take_array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Truncated> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N, field)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, Truncated> {
        Ok(self.take_array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, Truncated> {
        Ok(u16::from_be_bytes(self.take_array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, Truncated> {
        Ok(u32::from_be_bytes(self.take_array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, Truncated> {
        Ok(u64::from_be_bytes(self.take_array(field)?))
    }

    /// Reads a TPM2B: a `u16` size, then that many bytes. Callers check the
    /// returned length against the structure's maximum.
    pub(crate) fn tpm2b(&mut self, field: &'static str) -> Result<&'a [u8], Truncated> {
        let size = self.u16(field)?;
        self.take(usize::from(size), field)
    }
}

/// Appends a TPM2B (u16 size, then the bytes) to `out`. Input longer than
/// `u16::MAX` bytes is cut to that length.
pub(crate) fn put_tpm2b(out: &mut Vec<u8>, bytes: &[u8]) {
    let size = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(size)]);
}

//! The index of entries by name, for duplicate and parent look-ups.
//!
//! The engine hashes each name with random keys (a file chooses its stored
//! names, so their own bytes are no hash), and the table works on those
//! 64-bit hashes, called prefixes here. The table is open
//! addressing with linear probing: each slot contains the high 32 bits of a
//! prefix as a tag and the entry index plus one (0 marks an empty slot). The
//! low bits of the prefix pick the first slot. On a million-entry chain every
//! look-up misses the CPU caches, so the engine prefetches the slot of an
//! entry a few lines before it looks the entry up.

/// Returns true when `entries` would fill more than three quarters of
/// `slots`, the point where the table doubles. That keeps it at 10.7 to 21.3
/// bytes per entry. At that load a look-up of
/// a new name reads about eight slots on average, one or two cache lines.
fn over_max_load(entries: usize, slots: usize) -> bool {
    entries.saturating_mul(4) > slots.saturating_mul(3)
}

#[derive(Debug, Default)]
pub(super) struct NameIndex {
    slots: Vec<u64>,
    len: usize,
}

fn tag(prefix: u64) -> u64 {
    prefix >> 32
}

impl NameIndex {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    fn first_slot(&self, prefix: u64) -> usize {
        // Truncation keeps the low bits, which are what the mask keeps.
        (prefix as usize) & self.mask()
    }

    /// Makes room for `additional` more entries without growing again.
    /// `prefix_of` gives the prefix of an entry index already in the table.
    pub(super) fn reserve(&mut self, additional: usize, prefix_of: impl Fn(u32) -> u64) {
        let entries = self.len.saturating_add(additional);
        let needed = (entries.saturating_mul(4) / 3 + 1)
            .max(16)
            .next_power_of_two();
        if needed <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![0; needed]);
        let mask = self.mask();
        for slot in old.into_iter().filter(|&s| s != 0) {
            let index = (slot & 0xffff_ffff) as u32 - 1;
            let mut at = (prefix_of(index) as usize) & mask;
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }

    /// Adds entry `index` with name prefix `prefix`. Equal prefixes may repeat.
    pub(super) fn insert(&mut self, prefix: u64, index: u32, prefix_of: impl Fn(u32) -> u64) {
        if over_max_load(self.len + 1, self.slots.len()) {
            self.reserve(self.len.max(8), prefix_of);
        }
        let mask = self.mask();
        let mut at = self.first_slot(prefix);
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = (tag(prefix) << 32) | (u64::from(index) + 1);
        self.len += 1;
    }

    /// Returns the entry indexes whose prefix may equal `prefix`, in the
    /// order they were added when they share a slot run. The caller compares
    /// the full prefix (and then the name) of each.
    pub(super) fn candidates(&self, prefix: u64) -> impl Iterator<Item = u32> + '_ {
        let mask = self.mask();
        let expected_tag = tag(prefix);
        let mut at = if self.slots.is_empty() {
            None
        } else {
            Some(self.first_slot(prefix))
        };
        std::iter::from_fn(move || loop {
            let current = at?;
            let slot = self.slots[current];
            if slot == 0 {
                at = None;
                return None;
            }
            at = Some((current + 1) & mask);
            if slot >> 32 == expected_tag {
                return Some((slot & 0xffff_ffff) as u32 - 1);
            }
        })
    }

    /// Asks the CPU to start loading the slot a look-up of `prefix` reads first.
    pub(super) fn prefetch(&self, prefix: u64) {
        if self.slots.is_empty() {
            return;
        }
        let slot = &self.slots[self.first_slot(prefix)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults and reads nothing
        // into the program; SSE, which provides it, is part of every x86_64 CPU.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(slot).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_entry_and_only_tag_matches() {
        // Prefixes that share their low bits, so they collide in one run.
        let prefixes: Vec<u64> = (0..1000u64).map(|i| (i << 40) | 0x1234).collect();
        let mut index = NameIndex::default();
        for (i, &p) in prefixes.iter().enumerate() {
            index.insert(p, i as u32, |j| prefixes[j as usize]);
        }
        for (i, &p) in prefixes.iter().enumerate() {
            let found: Vec<u32> = index.candidates(p).collect();
            assert_eq!(found, vec![i as u32], "prefix {p:#x}");
        }
        assert_eq!(index.candidates(0x1234 | (5000 << 40)).count(), 0);
    }

    #[test]
    fn equal_prefixes_are_all_returned_in_order() {
        let (seven, nine) = (7u64 << 32 | 1, 9u64 << 32 | 1);
        let prefixes = [seven, seven, nine, seven];
        let mut index = NameIndex::default();
        for (i, &p) in prefixes.iter().enumerate() {
            index.insert(p, i as u32, |j| prefixes[j as usize]);
        }
        assert_eq!(index.candidates(seven).collect::<Vec<_>>(), vec![0, 1, 3]);
        assert_eq!(index.candidates(nine).collect::<Vec<_>>(), vec![2]);
        // Same low bits, another tag: the run is walked, nothing matches.
        assert_eq!(index.candidates(8u64 << 32 | 1).count(), 0);
    }

    #[test]
    fn growing_keeps_every_entry() {
        let prefixes: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let mut index = NameIndex::default();
        index.reserve(10, |j| prefixes[j as usize]);
        for (i, &p) in prefixes.iter().enumerate() {
            index.insert(p, i as u32, |j| prefixes[j as usize]);
            index.prefetch(p);
        }
        assert!(!over_max_load(prefixes.len(), index.slots.len()));
        assert!(index.slots.len() <= 4 * prefixes.len());
        for (i, &p) in prefixes.iter().enumerate() {
            assert!(index.candidates(p).any(|j| j == i as u32));
        }
        let empty = NameIndex::default();
        assert_eq!(empty.candidates(1).count(), 0);
        empty.prefetch(1);
    }
}

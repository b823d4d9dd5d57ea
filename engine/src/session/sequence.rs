//! `sequence_number` allocation for one session (SMPP 3.4 §5.1.4: 0x00000001 to 0x7FFFFFFF).

/// Largest sequence number SMPP 3.4 allows.
pub const MAX_SEQUENCE: u32 = 0x7FFF_FFFF;

/// Hands out sequence numbers 1, 2, … 0x7FFFFFFF, then wraps to 1 (never 0, never the high bit).
#[derive(Debug, Clone)]
pub struct SequenceAllocator {
    next: u32,
}

impl Default for SequenceAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl SequenceAllocator {
    /// Starts at 1.
    pub const fn new() -> Self {
        Self { next: 1 }
    }

    /// Starts at `first` (clamped into the valid range); for tests of the wrap.
    pub const fn starting_at(first: u32) -> Self {
        Self {
            next: if first == 0 || first > MAX_SEQUENCE {
                1
            } else {
                first
            },
        }
    }

    /// The next number.
    pub fn allocate(&mut self) -> u32 {
        let n = self.next;
        self.next = if n >= MAX_SEQUENCE { 1 } else { n + 1 };
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_from_the_spec_maximum_to_one() {
        let mut seq = SequenceAllocator::starting_at(MAX_SEQUENCE - 1);
        assert_eq!(seq.allocate(), MAX_SEQUENCE - 1);
        assert_eq!(seq.allocate(), MAX_SEQUENCE);
        assert_eq!(seq.allocate(), 1);
        assert_eq!(SequenceAllocator::starting_at(0).allocate(), 1);
        assert_eq!(SequenceAllocator::starting_at(0x8000_0000).allocate(), 1);
    }
}

//! The probe payload `gen --stamp` writes at the start of the UDP payload so that `sink`
//! and `tstamp --match seq` can measure loss, reordering and one-way latency.
//!
//! 18 bytes, so it fits a minimum-size frame (60 bytes less 42 of headers):
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | 0..2 | magic | [`MAGIC`], big-endian |
//! | 2..10 | seq | stream id in the top 8 bits (the TX queue), per-stream counter below |
//! | 10..18 | tx_ns | CLOCK_REALTIME nanoseconds when the frame was handed to the NIC |
//!
//! CLOCK_REALTIME because software receive timestamps (`SO_TIMESTAMPING`) are on it, so
//! sender and receiver on one host share a clock.

use super::WireError;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..2;
    pub const SEQ: Range<usize> = 2..10;
    pub const TX_NS: Range<usize> = 10..18;
}

/// Probe payload length.
pub const LEN: usize = field::TX_NS.end;
/// Marks a probe payload.
pub const MAGIC: u16 = 0x5eb5;
/// Bits of `seq` below the stream id.
pub const COUNTER_BITS: u32 = 56;

/// A view of a probe payload.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks; getters panic on fewer than [`LEN`] bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after checking its length and magic.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Checks length and magic.
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if self.magic() != MAGIC {
            return Err(WireError::BadMagic);
        }
        Ok(())
    }

    pub fn magic(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }
    pub fn seq(&self) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.buffer.as_ref()[field::SEQ]);
        u64::from_be_bytes(a)
    }
    pub fn tx_ns(&self) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.buffer.as_ref()[field::TX_NS]);
        u64::from_be_bytes(a)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_magic(&mut self) {
        self.buffer.as_mut()[field::MAGIC].copy_from_slice(&MAGIC.to_be_bytes());
    }
    pub fn set_seq(&mut self, v: u64) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_tx_ns(&mut self, v: u64) {
        self.buffer.as_mut()[field::TX_NS].copy_from_slice(&v.to_be_bytes());
    }
}

/// A probe as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub stream: u8,
    pub counter: u64,
    pub tx_ns: u64,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, WireError> {
        p.check()?;
        let seq = p.seq();
        Ok(Repr {
            stream: (seq >> COUNTER_BITS) as u8,
            counter: seq & ((1 << COUNTER_BITS) - 1),
            tx_ns: p.tx_ns(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        LEN
    }

    /// The combined `seq` field.
    pub fn seq(&self) -> u64 {
        (u64::from(self.stream) << COUNTER_BITS) | (self.counter & ((1 << COUNTER_BITS) - 1))
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_magic();
        p.set_seq(self.seq());
        p.set_tx_ns(self.tx_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fixture() {
        let r = Repr {
            stream: 3,
            counter: 0x0102_0304,
            tx_ns: 0x1122_3344_5566_7788,
        };
        let mut b = [0u8; LEN];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(
            b,
            [
                0x5e, 0xb5, 3, 0, 0, 0, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88
            ]
        );
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).expect("check")).expect("parse"),
            r
        );
    }

    #[test]
    fn rejects_short_and_foreign() {
        assert_eq!(
            Packet::new_checked(&[0x5e, 0xb5][..]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&[0u8; LEN][..]).err(),
            Some(WireError::BadMagic)
        );
    }
}

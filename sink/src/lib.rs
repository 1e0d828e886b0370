//! The receive engine: capture back ends (AF_XDP, AF_PACKET TPACKET_V3) with per-packet
//! timestamps, counters and pcapng writing; and the AF_XDP layer that `gen` and `dut`
//! share.

pub mod af_xdp;

//! Shared helpers of the xdp-layer integration tests: a uniquely named direct
//! lab per test (torn down on drop, even when an assertion fails) and the XDP
//! program on an interface of a namespace.
#![allow(dead_code)]

use testbed::{Testbed, Topology, UpOptions};

/// A direct lab (gen0 <-> dut0, the placeholder on both) named `<prefix>-<unique>`.
pub fn up(prefix: &str) -> Testbed {
    Testbed::up(&UpOptions {
        name: testbed::unique_name(prefix),
        topology: Topology::Direct,
        queues: 1,
    })
    .expect("lab up")
}

/// The XDP program on `iface` in `netns`: (id, name).
pub fn prog_on(netns: &str, iface: &str) -> Option<(u32, String)> {
    let iface = iface.to_string();
    testbed::run_in_netns(netns, move || {
        xdplayer::attached_prog(&iface).expect("query XDP")
    })
    .expect("enter netns")
}

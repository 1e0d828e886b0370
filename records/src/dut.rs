//! `dut`'s records (keys documented in dut-programs/README.md): `dut status`
//! (one object, every attached program) and `dut update-bench` (one `final`
//! record per method).

use serde::{Deserialize, Serialize};

use crate::Kind;

/// Where a program runs (`dut install --mode`, `mode` in `dut status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the driver (XDP native).
    #[default]
    Native,
    /// On the skb path (XDP generic).
    Generic,
    /// On the NIC (XDP hardware offload).
    Offload,
    /// In user space behind AF_XDP.
    Userspace,
}

impl Mode {
    /// Name as on the command line and in the records.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
            Mode::Offload => "offload",
            Mode::Userspace => "userspace",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    /// `native`, `generic`, `offload` or `userspace`, as on the command line.
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "native" => Ok(Mode::Native),
            "generic" => Ok(Mode::Generic),
            "offload" => Ok(Mode::Offload),
            "userspace" => Ok(Mode::Userspace),
            _ => Err(format!(
                "unknown mode `{s}` (native, generic, offload, userspace)"
            )),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Defines [`Counters`] from one list of its fields, in the order of the C
/// struct: the struct, its names, and its conversions to and from an array
/// in that order all follow from the list.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// The per-CPU counters every DUT program keeps, summed over CPUs
        /// (`struct dut_counters` in dut-programs/src/bpf/wire.h, in its order).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Counter names, in struct order (the order of the C struct).
            pub const NAMES: [&'static str; 16] = [$(stringify!($name)),*];

            /// The values in struct order.
            pub fn to_array(&self) -> [u64; 16] {
                [$(self.$name),*]
            }

            /// From the values in struct order.
            pub fn from_array(a: [u64; 16]) -> Counters {
                let [$($name),*] = a;
                Counters { $($name),* }
            }
        }
    };
}

counters! {
    /// Frames seen.
    packets,
    /// Bytes seen.
    bytes,
    /// XDP_PASS verdicts.
    pass,
    /// XDP_DROP verdicts.
    drop,
    /// XDP_TX verdicts.
    tx,
    /// XDP_REDIRECT verdicts.
    redirect,
    /// XDP_ABORTED verdicts.
    aborted,
    /// Frames that did not parse.
    parse_errors,
    /// Frames outside `--only-dst`.
    not_tenant,
    /// Frames the program does not handle.
    not_handled,
    /// Answers built.
    answers,
    /// Cache hits.
    hits,
    /// Cache misses.
    misses,
    /// Names too long for the cache key.
    too_long,
    /// Checksums computed.
    checksums,
    /// Checksums found wrong.
    checksum_bad,
}

impl Counters {
    /// (name, value) in struct order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, u64)> {
        Self::NAMES.into_iter().zip(self.to_array())
    }
}

/// Rates over a window (`dut status --window`) or since the previous `dut status`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Window length, seconds.
    pub interval_s: f64,
    /// Frames/s seen.
    pub packets_pps: f64,
    /// Mbit/s seen.
    pub mbps: f64,
    /// XDP_PASS verdicts/s.
    pub pass_pps: f64,
    /// XDP_DROP verdicts/s.
    pub drop_pps: f64,
    /// XDP_TX verdicts/s.
    pub tx_pps: f64,
    /// Parse errors/s.
    pub parse_errors_pps: f64,
}

/// The configuration a program was loaded with (its rodata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgConfig {
    /// Checksum rounds per frame.
    pub checksums: u32,
    /// `--only-dst` prefix (`a.b.c.d/len`), null when every destination is processed.
    pub only_dst: Option<String>,
}

/// Who holds an attachment, from its ownership record (`xdplayer::owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Claim {
    /// The placeholder `xdp_pass`.
    Placeholder,
    /// A process-scoped program whose owner is gone.
    Orphan,
    /// A process-scoped program whose owner runs.
    Live,
    /// A persistent installation (`dut install`).
    Persistent,
    /// No (trusted) record.
    Unrecorded,
}

/// How long an attachment is meant to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// As long as the owning process.
    Process,
    /// Until removed.
    Persistent,
}

/// The `owner` of an attached program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    /// What the record says about the program.
    pub claim: Claim,
    /// Scope (null without a record).
    pub scope: Option<Scope>,
    /// Owning process (null without a record).
    pub pid: Option<u32>,
    /// Its command name (null without a record).
    pub comm: Option<String>,
}

/// One attached program in `dut status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attached {
    /// Interface.
    pub iface: String,
    /// Its index.
    pub ifindex: u32,
    /// dut's program name (`dns-cache`), or the BPF name of a foreign program.
    pub program: String,
    /// The kernel's name of the program.
    pub bpf_name: String,
    /// One of dut's programs.
    pub ours: bool,
    /// Execution point.
    pub mode: Mode,
    /// Kernel program id.
    pub prog_id: u32,
    /// Configuration (dut's programs only).
    pub config: Option<ProgConfig>,
    /// Counters (dut's programs only).
    pub counters: Option<Counters>,
    /// Rates over the window, or since the previous `dut status` (null the first time).
    pub rates: Option<Rates>,
    /// Runs counted by the kernel (over the window with `--window`).
    pub run_cnt: u64,
    /// Run time counted by the kernel, ns (over the window with `--window`).
    pub run_time_ns: u64,
    /// run_time_ns / run_cnt (null when nothing ran).
    pub ns_per_packet: Option<f64>,
    /// Who holds it.
    pub owner: Owner,
}

/// `dut status --output json`: one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Every XDP program attached (on the interface asked for, or everywhere).
    pub interfaces: Vec<Attached>,
}

impl Status {
    /// Reads `dut status --output json`'s output, checking the schema version.
    pub fn parse(text: &str) -> Result<Status, crate::RecordError> {
        let v: serde_json::Value = serde_json::from_str(text.trim())
            .map_err(|e| crate::RecordError::NotJson(e.to_string()))?;
        crate::typed(v, "dut status")
    }

    /// The entry of `iface`.
    pub fn on(&self, iface: &str) -> Option<&Attached> {
        self.interfaces.iter().find(|a| a.iface == iface)
    }
}

/// How `update-bench` wrote the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One `bpf_map_update_elem` per entry.
    Single,
    /// `bpf_map_update_batch`.
    Batch,
}

/// One `dut update-bench --output json` record (per method).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBench {
    /// Always [`Kind::Final`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Profile whose name set was written.
    pub profile: String,
    /// Entries in the map.
    pub entries: u64,
    /// Method.
    pub method: Method,
    /// Batch size (null for single).
    pub batch: Option<usize>,
    /// Updates done.
    pub updates: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// updates / seconds.
    pub updates_per_s: f64,
}

/// `dut install --foreground --output json`'s first line: attached (or, in user
/// space, the sockets are bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallReady {
    /// Always [`Kind::Ready`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Interface.
    pub iface: String,
    /// Program.
    pub program: String,
    /// Execution point.
    pub mode: Mode,
    /// Kernel program id (null in user space).
    pub prog_id: Option<u32>,
    /// AF_XDP bind mode (user space only).
    pub xsk_mode: Option<String>,
    /// Attach mode of the redirect program (user space only).
    pub redirect_mode: Option<String>,
    /// AF_XDP sockets, one per queue (user space only).
    pub queues: Option<usize>,
}

/// `dut install --foreground --output json`'s last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallFinal {
    /// Always [`Kind::Final`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Interface.
    pub iface: String,
    /// Program.
    pub program: String,
    /// Execution point.
    pub mode: Mode,
    /// Counters at the end.
    pub counters: Counters,
    /// The user-space point's figures (null in the kernel).
    pub userspace: Option<UserspaceFinal>,
}

/// What the user-space execution point adds to its final record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserspaceFinal {
    /// AF_XDP bind mode.
    pub xsk_mode: String,
    /// Attach mode of the redirect program (`native`, `generic`).
    pub redirect_mode: Option<String>,
    /// Sockets (queues).
    pub queues: usize,
    /// Seconds run.
    pub duration_s: f64,
    /// Frames received.
    pub rx_packets: u64,
    /// Frames sent back.
    pub tx_packets: u64,
    /// Frames dropped because the TX ring was full.
    pub tx_full: u64,
    /// Frames run through the program.
    pub run_cnt: u64,
    /// Time in the program, ns.
    pub run_time_ns: u64,
    /// run_time_ns / run_cnt (null when nothing ran).
    pub ns_per_packet: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_keep_struct_order() {
        let a: [u64; 16] = std::array::from_fn(|i| i as u64 * 3 + 1);
        let c = Counters::from_array(a);
        assert_eq!(c.to_array(), a);
        assert_eq!(c.packets, 1);
        assert_eq!(c.checksum_bad, 46);
        let v = serde_json::to_value(c).expect("json");
        for (i, (name, value)) in c.pairs().enumerate() {
            assert_eq!(v[name], a[i], "{name}");
            assert_eq!(value, a[i]);
        }
        assert_eq!(v.as_object().map(|o| o.len()), Some(16));
        assert_eq!(Counters::NAMES[0], "packets");
        assert_eq!(Counters::NAMES[7], "parse_errors");
        assert_eq!(Counters::NAMES[15], "checksum_bad");
    }

    #[test]
    fn status_rejects_unknown_fields_and_versions() {
        let entry = serde_json::json!({
            "iface": "dut0", "ifindex": 4, "program": "drop", "bpf_name": "dut_drop", "ours": true,
            "mode": "native", "prog_id": 77, "config": {"checksums": 1, "only_dst": null},
            "counters": Counters::default(), "rates": null, "run_cnt": 0, "run_time_ns": 0,
            "ns_per_packet": null, "owner": {"claim": "live", "scope": "process", "pid": 9, "comm": "lab"}});
        let ok = serde_json::json!({"schema_version": crate::SCHEMA_VERSION, "interfaces": [entry.clone()]});
        let s = Status::parse(&ok.to_string()).expect("status");
        assert_eq!(
            s.on("dut0").map(|a| (a.prog_id, a.mode)),
            Some((77, Mode::Native))
        );
        assert!(s.on("dut1").is_none());
        let mut bad = entry.clone();
        bad["counters"]["packtes"] = 1.into();
        let e = Status::parse(
            &serde_json::json!({"schema_version": crate::SCHEMA_VERSION, "interfaces": [bad]})
                .to_string(),
        )
        .expect_err("unknown counter");
        assert!(e.to_string().contains("packtes"), "{e}");
        let mut bad = entry.clone();
        bad["mode"] = "hardware".into();
        assert!(
            Status::parse(
                &serde_json::json!({"schema_version": crate::SCHEMA_VERSION, "interfaces": [bad]})
                    .to_string()
            )
            .is_err()
        );
        let old = serde_json::json!({"schema_version": 0, "interfaces": [entry]});
        assert!(matches!(
            Status::parse(&old.to_string()),
            Err(crate::RecordError::Version { found: 0 })
        ));
    }

    #[test]
    fn modes_print_back() {
        for m in [Mode::Native, Mode::Generic, Mode::Offload, Mode::Userspace] {
            assert_eq!(m.as_str().parse::<Mode>(), Ok(m));
            assert_eq!(serde_json::to_value(m).expect("json"), m.as_str());
        }
        assert!("hw".parse::<Mode>().is_err());
    }
}

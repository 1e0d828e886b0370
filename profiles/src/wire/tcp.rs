//! TCP header pieces the profiles write: flag names and options as a profile spells
//! them, and their encoding. Reading TCP back is etherparse's (tests, tools); this is
//! only what the frame templates emit.
//!
//! Options are written in the profile's order and padded with end-of-list bytes to a
//! multiple of 4 (at most 40 bytes). Linux's SYN (`mss=1460`, `sack_perm`, `ts`,
//! `nop`, `wscale=7`) is exactly 20 bytes.

/// TCP header length without options.
pub const HEADER_LEN: usize = 20;
/// Largest options block.
pub const MAX_OPTIONS: usize = 40;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

const FLAG_NAMES: [(&str, u8); 8] = [
    ("fin", FIN),
    ("syn", SYN),
    ("rst", RST),
    ("psh", PSH),
    ("ack", ACK),
    ("urg", URG),
    ("ece", ECE),
    ("cwr", CWR),
];

/// Parses flag names joined by `|`, `,`, `+` or spaces (`"syn"`, `"syn|ack"`),
/// case-insensitive.
pub fn parse_flags(s: &str) -> Result<u8, String> {
    let mut out = 0u8;
    let mut any = false;
    for w in s
        .split(|c: char| c == '|' || c == ',' || c == '+' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let lw = w.to_ascii_lowercase();
        let Some((_, bit)) = FLAG_NAMES.iter().find(|(n, _)| *n == lw) else {
            return Err(format!(
                "unknown TCP flag '{w}' (fin, syn, rst, psh, ack, urg, ece, cwr joined by |)"
            ));
        };
        out |= bit;
        any = true;
    }
    if !any {
        return Err("no TCP flags given (e.g. \"syn\" or \"syn|ack\")".into());
    }
    Ok(out)
}

/// Flag names of `f`, joined by `|`.
pub fn flag_names(f: u8) -> String {
    FLAG_NAMES
        .iter()
        .filter(|(_, b)| f & b != 0)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join("|")
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption {
    /// Kind 0.
    EndOfList,
    /// Kind 1.
    Nop,
    /// Kind 2, length 4.
    Mss(u16),
    /// Kind 3, length 3.
    WindowScale(u8),
    /// Kind 4, length 2.
    SackPermitted,
    /// Kind 8, length 10.
    Timestamps { val: u32, ecr: u32 },
}

impl TcpOption {
    /// Parses `mss=1460`, `wscale=7`, `sack_perm`, `ts` (TSval 1, TSecr 0),
    /// `ts=VAL` or `ts=VAL:ECR`, `nop`, `eol`.
    pub fn parse(s: &str) -> Result<TcpOption, String> {
        let (k, v) = match s.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (s.trim(), None),
        };
        let num = |v: Option<&str>, max: u64| -> Result<u64, String> {
            let v = v.ok_or_else(|| format!("TCP option '{k}' needs a value ({k}=N)"))?;
            v.parse::<u64>()
                .ok()
                .filter(|&x| x <= max)
                .ok_or_else(|| format!("TCP option '{s}': {v} is not a number up to {max}"))
        };
        let bare = |o: TcpOption| match v {
            None => Ok(o),
            Some(_) => Err(format!("TCP option '{k}' takes no value")),
        };
        match k {
            "mss" => Ok(TcpOption::Mss(num(v, 65535)? as u16)),
            "wscale" => Ok(TcpOption::WindowScale(num(v, 14)? as u8)),
            "sack_perm" => bare(TcpOption::SackPermitted),
            "nop" => bare(TcpOption::Nop),
            "eol" => bare(TcpOption::EndOfList),
            "ts" => match v {
                None => Ok(TcpOption::Timestamps { val: 1, ecr: 0 }),
                Some(v) => {
                    let (a, b) = v.split_once(':').unwrap_or((v, "0"));
                    let val = num(Some(a), u64::from(u32::MAX))? as u32;
                    let ecr = num(Some(b), u64::from(u32::MAX))? as u32;
                    Ok(TcpOption::Timestamps { val, ecr })
                }
            },
            other => Err(format!(
                "unknown TCP option '{other}' (mss=N, wscale=N, sack_perm, ts, ts=VAL:ECR, nop, eol)"
            )),
        }
    }

    fn emit(self, out: &mut Vec<u8>) {
        match self {
            TcpOption::EndOfList => out.push(0),
            TcpOption::Nop => out.push(1),
            TcpOption::Mss(m) => out.extend_from_slice(&[2, 4, (m >> 8) as u8, m as u8]),
            TcpOption::WindowScale(s) => out.extend_from_slice(&[3, 3, s]),
            TcpOption::SackPermitted => out.extend_from_slice(&[4, 2]),
            TcpOption::Timestamps { val, ecr } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
        }
    }
}

/// The options block: `opts` in order, padded with end-of-list to a multiple of 4.
pub fn encode_options(opts: &[TcpOption]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(MAX_OPTIONS);
    for o in opts {
        o.emit(&mut out);
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    if out.len() > MAX_OPTIONS {
        return Err(format!(
            "TCP options take {} bytes; at most {MAX_OPTIONS} fit in a TCP header",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_syn_options_are_20_bytes_in_linux_order() {
        let opts: Vec<TcpOption> = ["mss=1460", "sack_perm", "ts", "nop", "wscale=7"]
            .iter()
            .map(|s| TcpOption::parse(s).expect("option"))
            .collect();
        let b = encode_options(&opts).expect("encode");
        assert_eq!(
            b,
            [
                2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7
            ]
        );
    }

    #[test]
    fn padding_limits_and_bad_words() {
        assert_eq!(
            encode_options(&[TcpOption::Nop]).expect("pad"),
            [1, 0, 0, 0]
        );
        let many = [TcpOption::Timestamps { val: 1, ecr: 2 }; 5];
        assert!(encode_options(&many).is_err());
        assert!(TcpOption::parse("mss").is_err());
        assert!(TcpOption::parse("wscale=15").is_err());
        assert!(TcpOption::parse("sack").is_err());
        assert_eq!(
            TcpOption::parse("ts=5:6"),
            Ok(TcpOption::Timestamps { val: 5, ecr: 6 })
        );
        assert_eq!(parse_flags("SYN|ack"), Ok(SYN | ACK));
        assert!(parse_flags("syn|foo").is_err());
        assert!(parse_flags("").is_err());
        assert_eq!(flag_names(SYN | ACK), "syn|ack");
    }
}

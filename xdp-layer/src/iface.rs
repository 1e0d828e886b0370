//! Interface lookup in the calling thread's network namespace (so after `--netns`,
//! or inside a thread that entered another namespace, names resolve there).

use crate::error::{Error, Result, io_err};

/// Index of `iface` in the calling thread's namespace.
pub fn ifindex(iface: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(iface).map_err(|_| Error::NoSuchInterface {
        iface: iface.into(),
    })
}

/// Every interface of the calling thread's namespace, as (index, name).
pub fn interfaces() -> Result<Vec<(u32, String)>> {
    let list = nix::net::if_::if_nameindex()
        .map_err(|e| io_err("list interfaces", std::io::Error::from(e)))?;
    Ok(list
        .iter()
        .map(|i| (i.index(), i.name().to_string_lossy().into_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_resolves_and_nonsense_does_not() {
        assert!(super::ifindex("lo").is_ok());
        assert!(matches!(
            super::ifindex("no-such-if0"),
            Err(crate::Error::NoSuchInterface { .. })
        ));
        assert!(
            super::interfaces()
                .expect("list")
                .iter()
                .any(|(_, n)| n == "lo")
        );
    }
}

//! `lab up --topology ssh`: the switched lab with a second generator host (or
//! `--topology ssh-tenants`: the tenants lab, its tenants hosts too), whose
//! hosts are reached only over SSH (`testbed::ssh`: a management network, an sshd per host namespace, keys,
//! `ssh_config` and `known_hosts` made for the lab), and the testbed file that
//! describes it ([`crate::testbed_file`]), which `lab demo --testbed FILE` takes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use testbed::{Host, Testbed, Topology, UpOptions};

use crate::testbed_file::{Endpoint, TestbedFile};

/// Where lab `name`'s testbed file is (in its SSH directory).
pub fn testbed_file_path(name: &str) -> PathBuf {
    testbed::ssh::dir(name).join("testbed.toml")
}

/// The testbed file of lab `name`, if it is an SSH lab that has one.
pub fn testbed_file_of(name: &str) -> Option<PathBuf> {
    Some(testbed_file_path(name)).filter(|p| p.exists())
}

/// The directory of this build's tools (`gen`, `dut`, `tstamp`, all in one place).
pub fn local_tools_dir() -> Result<PathBuf> {
    let mut dir: Option<PathBuf> = None;
    for t in ["gen", "dut", "tstamp"] {
        let p = testbed::binaries::locate(t)?;
        let d = p
            .parent()
            .ok_or_else(|| anyhow!("{} has no directory", p.display()))?
            .to_path_buf();
        match &dir {
            Some(x) if *x != d => {
                return Err(anyhow!(
                    "the tools are in different directories ({} and {}): a testbed file names one; build them all with `cargo build --release --workspace`",
                    x.display(),
                    d.display()
                ));
            }
            _ => dir = Some(d),
        }
    }
    dir.ok_or_else(|| anyhow!("no tool"))
}

/// Builds the SSH lab `name`: the switched lab (with `tenants`, the tenants
/// lab), its sshd, and its testbed file. Returns the lab (process-scoped, torn
/// down with sshd when dropped) and the testbed file's path.
///
/// On the tenants lab the file's second `[[gen]]` is the generator's port
/// `gen1`, cabled to the host's second port `dut1` (`[dut] second_iface`),
/// and each tenant is a `[[tenant]]` (its `ten0`, address and MAC).
pub fn up(name: &str, queues: u32, tenants: bool) -> Result<(Testbed, PathBuf)> {
    let tools = local_tools_dir()?;
    let topology = if tenants {
        Topology::Tenants
    } else {
        Topology::Switched
    };
    let bed = Testbed::up(&UpOptions {
        name: name.to_owned(),
        topology,
        queues,
    })
    .with_context(|| format!("build the {topology} lab {name}"))?;
    let ssh = testbed::ssh::up(&bed).with_context(|| format!("start sshd in lab {name}"))?;
    let endpoint = |role: &str, h: &Host| -> Result<Endpoint> {
        let s = ssh
            .host(&h.netns)
            .ok_or_else(|| anyhow!("no sshd in {}", h.netns))?;
        Ok(Endpoint {
            role: role.to_owned(),
            ssh: s.destination(),
            port: None,
            iface: h.iface.clone(),
            netns: None,
            tools: tools.clone(),
            ip: h.ip,
            mac: h.mac,
        })
    };
    let mon = bed
        .mon()
        .ok_or_else(|| anyhow!("the switched lab has no monitor"))?;
    let file = TestbedFile {
        origin: String::new(),
        ssh_config: Some(ssh.ssh_config.clone()),
        gens: ssh
            .gens
            .iter()
            .enumerate()
            .map(|(i, h)| endpoint(&format!("gen[{i}]"), h))
            .collect::<Result<_>>()?,
        dut: endpoint("dut", bed.dut())?,
        mon: Some(endpoint("mon", mon)?),
        tenants: bed
            .tenants()
            .iter()
            .enumerate()
            .map(|(i, t)| endpoint(&format!("tenant[{}]", i + 1), t))
            .collect::<Result<_>>()?,
        dut_second_iface: bed.second_port().map(|(_, d)| d.iface.clone()),
    };
    let path = testbed_file_path(name);
    write_file(&path, &file.to_toml())?;
    Ok((bed, path))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

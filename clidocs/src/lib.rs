//! Man pages and shell completions for every binary, generated from the same clap
//! definitions the binaries parse with (ripgrep's `--generate` idea, as a separate
//! tool so that no binary carries a hidden mode): `xdpm-docs --out DIR` writes
//! them, `xdpm-docs --install` puts them where man and the shells look.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// Every binary's command definition, by binary name.
pub fn commands() -> Vec<clap::Command> {
    vec![
        xgen::cli::Args::command().name("gen"),
        sink::cli::Args::command().name("sink"),
        tstamp::cli::Args::command().name("tstamp"),
        dut_programs::cli::Args::command().name("dut"),
        lab::cli::Cli::command().name("lab"),
    ]
}

/// The shells completions are written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Where one kind of file goes under an install prefix (or an output directory).
#[derive(Debug, Clone)]
pub struct Layout {
    /// Man pages (section 1).
    pub man1: PathBuf,
    /// bash completions (one file per command, named after it).
    pub bash: PathBuf,
    /// zsh completions (`_NAME`).
    pub zsh: PathBuf,
    /// fish completions (`NAME.fish`).
    pub fish: PathBuf,
}

impl Layout {
    /// The conventional places under `prefix` (e.g. /usr/local).
    pub fn install(prefix: &Path) -> Layout {
        Layout {
            man1: prefix.join("share/man/man1"),
            bash: prefix.join("share/bash-completion/completions"),
            zsh: prefix.join("share/zsh/site-functions"),
            fish: prefix.join("share/fish/vendor_completions.d"),
        }
    }

    /// A flat tree for inspection or packaging: DIR/man1, DIR/completions/SHELL.
    pub fn out(dir: &Path) -> Layout {
        Layout {
            man1: dir.join("man1"),
            bash: dir.join("completions/bash"),
            zsh: dir.join("completions/zsh"),
            fish: dir.join("completions/fish"),
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    // Written next to the target and renamed: never a half-written page.
    let tmp = path.with_extension("tmp-xdpm");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

fn man_pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let name = if prefix.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{prefix}-{}", cmd.get_name())
    };
    let page = cmd.clone().name(name.clone()).version(buildinfo::VERSION);
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut buf)
        .with_context(|| format!("rendering the man page of {name}"))?;
    out.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            man_pages(sub, &name, out)?;
        }
    }
    Ok(())
}

/// Writes every page and completion file into `layout`; returns the files written.
pub fn generate(layout: &Layout) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for d in [&layout.man1, &layout.bash, &layout.zsh, &layout.fish] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    for mut cmd in commands() {
        // Built first, so that global options (`--netns`, `--output`, `--json`)
        // reach the subcommands' pages too.
        cmd.build();
        let name = cmd.get_name().to_owned();
        let mut pages = Vec::new();
        man_pages(&cmd, "", &mut pages)?;
        for (file, bytes) in pages {
            let p = layout.man1.join(file);
            write(&p, &bytes)?;
            written.push(p);
        }
        for shell in SHELLS {
            let (dir, file) = match shell {
                Shell::Bash => (&layout.bash, name.clone()),
                Shell::Zsh => (&layout.zsh, format!("_{name}")),
                _ => (&layout.fish, format!("{name}.fish")),
            };
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut buf);
            let p = dir.join(file);
            write(&p, &buf)?;
            written.push(p);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary_gets_pages_and_completions_that_name_its_options() {
        let dir = tempfile::tempdir().expect("tmp");
        let files = generate(&Layout::out(dir.path())).expect("generate");
        let read = |rel: &str| {
            std::fs::read_to_string(dir.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
        };
        for (bin, opt) in [
            ("gen", "--rate"),
            ("sink", "--iface"),
            ("tstamp", "--match"),
            ("dut", "--netns"),
            ("lab", "--name"),
        ] {
            let man = read(&format!("man1/{bin}.1"));
            assert!(man.contains(".TH"), "{bin}: a roff page");
            assert!(
                man.contains(&opt.replace('-', "\\-")),
                "{bin}: documents {opt}"
            );
            assert!(
                man.contains(buildinfo::GIT_COMMIT),
                "{bin}: names the commit"
            );
            assert!(
                read(&format!("completions/bash/{bin}")).contains(opt),
                "{bin} bash"
            );
            assert!(
                read(&format!("completions/zsh/_{bin}")).contains(opt),
                "{bin} zsh"
            );
            assert!(
                read(&format!("completions/fish/{bin}.fish")).contains(&opt[2..]),
                "{bin} fish"
            );
        }
        // Subcommands have pages of their own.
        assert!(read("man1/dut-install.1").contains("\\-\\-iface"));
        // Global options on the subcommands' pages too; --json everywhere.
        assert!(read("man1/dut-status.1").contains("\\-\\-json"));
        assert!(read("man1/dut-update-bench.1").contains("\\-\\-output"));
        for page in ["gen", "sink", "tstamp", "lab-status"] {
            let man = read(&format!("man1/{page}.1"));
            assert!(
                man.contains("\\-\\-json") && man.contains("\\-\\-output"),
                "{page}"
            );
        }
        assert!(read("man1/lab-run.1").contains("\\-\\-quick"));
        assert!(files.iter().all(|f| f.exists()));
        assert!(
            !files
                .iter()
                .any(|f| f.to_string_lossy().ends_with("tmp-xdpm"))
        );
    }
}

//! What every binary says about itself: `--version` prints the package version and
//! the git commit the build came from, and `lab` records it with every run so two
//! results can be traced to the code that produced them.

/// The git commit of the build (`unknown` outside a git checkout; `-dirty` when
/// the work tree had uncommitted changes).
pub const GIT_COMMIT: &str = env!("XDPM_GIT_COMMIT");

/// `0.1.0 (git 0123456789ab)`: the string `--version` prints after the name.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("XDPM_GIT_COMMIT"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_a_commit() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(VERSION.contains("(git "));
        let c = GIT_COMMIT.trim_end_matches("-dirty");
        assert!(
            c == "unknown" || (c.len() == 12 && c.chars().all(|x| x.is_ascii_hexdigit())),
            "{GIT_COMMIT}"
        );
    }
}

//! Output files written under a temporary name beside their destination and renamed into
//! place only when complete; dropped without `commit` (error, early exit) the temporary
//! file is removed, so a half-written output never carries the requested name. Used for
//! the tools' outputs (pcapng, HDR logs, CSV, SVG) and for [`crate::owner`] records.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file written under a temporary name and renamed on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    tmp: PathBuf,
    pub file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file now, so an unwritable destination fails before any work.
    pub fn create(dest: &Path) -> std::io::Result<AtomicFile> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let f = File::create(&tmp)?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            tmp,
            file: Some(BufWriter::new(f)),
        })
    }

    /// The temporary file's path.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The writer (panics after [`AtomicFile::commit`], which consumes `self`, so never).
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("AtomicFile used after commit")
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(mut self) -> std::io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
            f.get_ref().sync_all()?;
        }
        std::fs::rename(&self.tmp, &self.dest)
    }
}

/// Writes `bytes` to `dest` through a temporary file and a rename.
pub fn write(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut a = AtomicFile::create(dest)?;
    a.writer().write_all(bytes)?;
    a.commit()
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let d = tempfile::tempdir().expect("tempdir");
        let dest = d.path().join("x.csv");
        {
            let mut a = AtomicFile::create(&dest).expect("create");
            writeln!(a.writer(), "half").expect("write");
        }
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(d.path()).expect("ls").count(),
            0,
            "temporary file removed"
        );
        let mut a = AtomicFile::create(&dest).expect("create");
        writeln!(a.writer(), "whole").expect("write");
        a.commit().expect("commit");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "whole\n");
    }
}

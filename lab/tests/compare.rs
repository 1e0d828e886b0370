//! `lab compare A B` on two output directories: ratios, interval overlap, and a
//! clear error when they share nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::lab_bin;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn points(dir: &Path, rows: &[(&str, f64, &[f64])]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut s = format!("{}\n", lab::store::POINTS_HEADER);
    for (series, x, vals) in rows {
        for (i, v) in vals.iter().enumerate() {
            s.push_str(&format!(
                "e,{series},drop_pps,{x},{},{v},packets/s,dut\n",
                i + 1
            ));
        }
    }
    std::fs::write(dir.join("points.csv"), s).expect("write points.csv");
}

fn compare(a: &Path, b: &Path) -> (bool, String, String) {
    let out = Command::new(lab_bin())
        .arg("compare")
        .arg(a)
        .arg(b)
        .output()
        .expect("run lab compare");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_reports_ratios_and_which_points_differ() {
    let root = Dir(std::env::temp_dir().join(format!("lab-compare-{}", std::process::id())));
    let (a, b, c) = (root.0.join("a"), root.0.join("b"), root.0.join("c"));
    points(
        &a,
        &[
            ("native", 1.0, &[100.0, 102.0, 98.0]),
            ("native", 2.0, &[200.0, 204.0, 196.0]),
        ],
    );
    points(
        &b,
        &[
            ("native", 1.0, &[101.0, 103.0, 99.0]),
            ("native", 2.0, &[300.0, 306.0, 294.0]),
        ],
    );
    let (ok, out, err) = compare(&a, &b);
    assert!(ok, "{err}");
    let line = |x: &str| {
        out.lines()
            .find(|l| l.starts_with("native") && l.split_whitespace().nth(2) == Some(x))
            .unwrap_or_else(|| panic!("no x={x} line: {out}"))
            .to_owned()
    };
    assert!(line("1").contains("overlap"), "{out}");
    assert!(line("1").contains("1.010"), "{out}");
    assert!(line("2").contains("DIFFER"), "{out}");
    assert!(line("2").contains("1.500"), "{out}");
    assert!(out.contains("1 of 2 compared values differ"), "{out}");
    // Nothing in common: one line, non-zero exit.
    points(&c, &[("other", 1.0, &[1.0])]);
    let (ok, _, err) = compare(&a, &c);
    assert!(!ok);
    assert!(err.contains("share no"), "{err}");
    // A directory without points.
    let (ok, _, err) = compare(&a, &root.0.join("missing"));
    assert!(!ok);
    assert!(err.contains("points.csv"), "{err}");
}

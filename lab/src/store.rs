//! The results of a run on disk, and reading them back to resume.
//!
//! `points.csv` holds every measured value, one line each:
//! `experiment,series,metric,x,repetition,value,unit,limited_by` (`limited_by`:
//! what limited the measurement, from its loss ledger: `dut`, `generator`, `path`,
//! `none`, empty where there is no traffic to account for). One measurement (one
//! series at one x, one repetition) writes all its metrics in one `write` and
//! flushes, so an interrupted run leaves only whole measurements behind; a
//! re-run with the same `--out` reads the file back and skips every
//! (series, x, repetition) already there. `summary.csv` is derived from it:
//! `series,metric,x,n,mean,ci99_low,ci99_high,unit,limited_by` (the most frequent
//! classification of the point's repetitions). Each measurement's loss ledger goes
//! to `ledger.csv` (one line per stage) and its classification with the reason to
//! `limits.csv`, both written before its points, and cut back on resume to the
//! measurements `points.csv` holds.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::ledger::{LEDGER_HEADER, LimitedBy, majority};
use crate::stats::Summary;

/// Header of `points.csv`.
pub const POINTS_HEADER: &str = "experiment,series,metric,x,repetition,value,unit,limited_by";
/// A number for a CSV cell: empty when not finite (no interval from one sample).
fn csv_num(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// Header of `summary.csv`.
pub const SUMMARY_HEADER: &str = "series,metric,x,n,mean,ci99_low,ci99_high,unit,limited_by";
/// Header of `trials.csv` (the trials of NDR searches).
pub const TRIALS_HEADER: &str = "experiment,series,x,repetition,trial,kind,rate_pps,offered_pps,sent,lost,loss_percent,p99_us,passed,limited_by,reason";
/// Header of `limits.csv`.
pub const LIMITS_HEADER: &str = "experiment,series,x,repetition,limited_by,reason";

/// One measured value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Experiment name.
    pub experiment: String,
    /// Series name.
    pub series: String,
    /// Metric name (`drop_pps`, `rtt_p50_us`, ...).
    pub metric: String,
    /// Value of the swept parameter.
    pub x: f64,
    /// Repetition, from 1.
    pub repetition: u32,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// What limited the measurement (None: nothing to account for).
    pub limited_by: Option<LimitedBy>,
}

impl Point {
    fn to_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{}\n",
            self.experiment,
            self.series,
            self.metric,
            fmt_num(self.x),
            self.repetition,
            fmt_num(self.value),
            self.unit,
            self.limited_by.map_or("", LimitedBy::name)
        )
    }
    fn parse(line: &str) -> Option<Point> {
        let f: Vec<&str> = line.split(',').collect();
        // 7 fields: written before limited_by existed.
        let limited_by = match f.len() {
            7 => None,
            8 if f[7].is_empty() => None,
            8 => Some(LimitedBy::parse(f[7])?),
            _ => return None,
        };
        Some(Point {
            experiment: f[0].to_owned(),
            series: f[1].to_owned(),
            metric: f[2].to_owned(),
            x: f[3].parse().ok()?,
            repetition: f[4].parse().ok()?,
            value: f[5].parse().ok()?,
            unit: f[6].to_owned(),
            limited_by,
        })
    }
}

/// The measurements of a points.csv text (header, blank and torn lines skipped).
pub fn parse_points(text: &str) -> Vec<Point> {
    text.lines().filter_map(Point::parse).collect()
}

/// Formats a number without a needless fraction.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Identifies one measurement: (series, x, repetition).
pub type Key = (String, String, u32);

/// Key of a measurement (x rendered as in the file).
pub fn key(series: &str, x: f64, repetition: u32) -> Key {
    (series.to_owned(), fmt_num(x), repetition)
}

/// `points.csv` of an output directory, open for appending.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    file: File,
    points: Vec<Point>,
    ledger: File,
    limits: File,
    trials: File,
}

/// Opens a CSV file whose lines start with `experiment,series,x,repetition` for
/// appending, keeping only the lines of measurements in `done` (a torn or
/// orphaned line from a killed run goes) under a fresh header.
fn keyed_file(path: &Path, header: &str, done: &HashSet<Key>) -> Result<File> {
    let mut body = format!("{header}\n");
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.splitn(5, ',').collect();
            if f.len() == 5
                && let Ok(rep) = f[3].parse::<u32>()
                && let Ok(x) = f[2].parse::<f64>()
                && done.contains(&key(f[1], x, rep))
            {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    write_atomic(path, body.as_bytes())?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}

/// One measurement's line of `limits.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Series.
    pub series: String,
    /// x.
    pub x: f64,
    /// Repetition.
    pub repetition: u32,
    /// What limited it.
    pub limited_by: LimitedBy,
    /// Why, in words.
    pub reason: String,
}

/// Reads `limits.csv` of an output directory (empty when there is none).
pub fn read_limits(dir: &Path) -> Vec<Limit> {
    let Ok(text) = std::fs::read_to_string(dir.join("limits.csv")) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.splitn(6, ',').collect();
            (f.len() == 6).then_some(())?;
            Some(Limit {
                series: f[1].to_owned(),
                x: f[2].parse().ok()?,
                repetition: f[3].parse().ok()?,
                limited_by: LimitedBy::parse(f[4])?,
                reason: f[5].to_owned(),
            })
        })
        .collect()
}

/// One line of `ledger.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerLine {
    /// Series.
    pub series: String,
    /// x.
    pub x: f64,
    /// Repetition.
    pub repetition: u32,
    /// Chain (`request`, `answer`, `mirror`).
    pub chain: String,
    /// Stage.
    pub stage: String,
    /// Place (`generator`, `path`, `dut`, `monitor`).
    pub place: String,
    /// Frames counted there.
    pub packets: u64,
    /// Frames missing compared with the stage before.
    pub lost: u64,
}

/// Reads `ledger.csv` of an output directory (empty when there is none).
pub fn read_ledger(dir: &Path) -> Vec<LedgerLine> {
    let Ok(text) = std::fs::read_to_string(dir.join("ledger.csv")) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (f.len() == 9).then_some(())?;
            Some(LedgerLine {
                series: f[1].to_owned(),
                x: f[2].parse().ok()?,
                repetition: f[3].parse().ok()?,
                chain: f[4].to_owned(),
                stage: f[5].to_owned(),
                place: f[6].to_owned(),
                packets: f[7].parse().ok()?,
                lost: f[8].parse().ok()?,
            })
        })
        .collect()
}

impl Store {
    /// Opens (or creates) `dir/points.csv`, reading back what is there. A
    /// file of another experiment is refused.
    pub fn open(dir: &Path, experiment: &str) -> Result<Store> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join("points.csv");
        let mut points = Vec::new();
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            for (i, line) in text.lines().enumerate() {
                if i == 0 && line == POINTS_HEADER || line.trim().is_empty() {
                    continue;
                }
                // A torn last line (killed mid-write) is dropped.
                let Some(p) = Point::parse(line) else {
                    continue;
                };
                if p.experiment != experiment {
                    bail!(
                        "{}:{}: holds experiment '{}', not '{experiment}'; use another --out",
                        path.display(),
                        i + 1,
                        p.experiment
                    );
                }
                points.push(p);
            }
        }
        // Rewrite it whole: drops a torn line and makes sure of the header.
        let mut body = format!("{POINTS_HEADER}\n");
        for p in &points {
            body.push_str(&p.to_line());
        }
        std::fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let done: HashSet<Key> = points
            .iter()
            .map(|p| key(&p.series, p.x, p.repetition))
            .collect();
        let ledger = keyed_file(&dir.join("ledger.csv"), LEDGER_HEADER, &done)?;
        let limits = keyed_file(&dir.join("limits.csv"), LIMITS_HEADER, &done)?;
        let trials = keyed_file(&dir.join("trials.csv"), TRIALS_HEADER, &done)?;
        Ok(Store {
            path,
            file,
            points,
            ledger,
            limits,
            trials,
        })
    }

    /// Appends one measurement's ledger lines, its limits line and its NDR trials (before its
    /// points: a measurement killed in between is measured again, and its lines
    /// are cut when the store is opened).
    pub fn append_ledger(&mut self, ledger: &str, limits: &str, trials: &str) -> Result<()> {
        for (f, text, name) in [
            (&mut self.ledger, ledger, "ledger.csv"),
            (&mut self.limits, limits, "limits.csv"),
            (&mut self.trials, trials, "trials.csv"),
        ] {
            f.write_all(text.as_bytes())
                .and_then(|_| f.flush())
                .with_context(|| format!("append to {name}"))?;
        }
        Ok(())
    }

    /// Measurements already present.
    pub fn done(&self) -> HashSet<Key> {
        self.points
            .iter()
            .map(|p| key(&p.series, p.x, p.repetition))
            .collect()
    }

    /// Appends one measurement's points (one write, flushed).
    pub fn append(&mut self, points: &[Point]) -> Result<()> {
        let body: String = points.iter().map(Point::to_line).collect();
        self.file
            .write_all(body.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("append to {}", self.path.display()))?;
        self.points.extend_from_slice(points);
        Ok(())
    }

    /// All points.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Path of points.csv.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Summary of one (series, metric, x).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Series name.
    pub series: String,
    /// Metric name.
    pub metric: String,
    /// x.
    pub x: f64,
    /// Unit.
    pub unit: String,
    /// The statistics.
    pub summary: Summary,
    /// What limited the point: the most frequent of its repetitions.
    pub limited_by: Option<LimitedBy>,
}

#[cfg(test)]
impl Row {
    /// A drop_pps row of `vals` (tests).
    pub(crate) fn sample(series: &str, x: f64, vals: &[f64], limited_by: Option<LimitedBy>) -> Row {
        Row {
            series: series.into(),
            metric: "drop_pps".into(),
            x,
            unit: "packets/s".into(),
            summary: Summary::of(vals).unwrap_or_else(|| panic!("no values")),
            limited_by,
        }
    }
}

/// Summarises points by (series, metric, x), in first-seen order of series
/// and metrics and increasing x.
pub fn summarise(points: &[Point]) -> Vec<Row> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(usize, String), Vec<&Point>> = BTreeMap::new();
    for p in points {
        let sm = (p.series.clone(), p.metric.clone());
        let idx = order.iter().position(|o| *o == sm).unwrap_or_else(|| {
            order.push(sm);
            order.len() - 1
        });
        groups
            .entry((idx, format!("{:020.6}", p.x)))
            .or_default()
            .push(p);
    }
    groups
        .into_values()
        .filter_map(|ps| {
            let vals: Vec<f64> = ps.iter().map(|p| p.value).collect();
            Some(Row {
                series: ps[0].series.clone(),
                metric: ps[0].metric.clone(),
                x: ps[0].x,
                unit: ps[0].unit.clone(),
                summary: Summary::of(&vals)?,
                limited_by: majority(&ps.iter().filter_map(|p| p.limited_by).collect::<Vec<_>>()),
            })
        })
        .collect()
}

/// Writes `summary.csv`.
pub fn write_summary(path: &Path, rows: &[Row]) -> Result<()> {
    let mut s = format!("{SUMMARY_HEADER}\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.series,
            r.metric,
            fmt_num(r.x),
            r.summary.n,
            r.summary.mean,
            csv_num(r.summary.ci99_low),
            csv_num(r.summary.ci99_high),
            r.unit,
            r.limited_by.map_or("", LimitedBy::name)
        ));
    }
    write_atomic(path, s.as_bytes())
}

/// Writes a file whole or not at all (`xdplayer::atomic_file`: an unnamed file that
/// gets its name when complete, so a killed `lab` leaves no half-written file).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    xdplayer::atomic_file::write(path, bytes).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lab-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn pt(series: &str, metric: &str, x: f64, rep: u32, value: f64) -> Point {
        Point {
            experiment: "e".into(),
            series: series.into(),
            metric: metric.into(),
            x,
            repetition: rep,
            value,
            unit: "pps".into(),
            limited_by: Some(LimitedBy::Dut),
        }
    }

    #[test]
    fn resume_reads_back_what_was_measured() {
        let dir = tmpdir("resume");
        {
            let mut s = Store::open(&dir, "e").unwrap();
            assert!(s.done().is_empty());
            s.append(&[pt("a", "m", 1.0, 1, 10.0), pt("a", "n", 1.0, 1, 5.0)])
                .unwrap();
            s.append(&[pt("a", "m", 2.5, 1, 11.0)]).unwrap();
        }
        // A torn line, as a kill mid-write would leave.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("points.csv"))
            .unwrap();
        f.write_all(b"e,a,m,3,1,1").unwrap();
        drop(f);
        let s = Store::open(&dir, "e").unwrap();
        let done = s.done();
        assert_eq!(done.len(), 2);
        assert!(done.contains(&key("a", 1.0, 1)));
        assert!(done.contains(&key("a", 2.5, 1)));
        assert!(!done.contains(&key("a", 3.0, 1)));
        assert!(!done.contains(&key("a", 1.0, 2)));
        assert_eq!(s.points().len(), 3);
        let text = std::fs::read_to_string(dir.join("points.csv")).unwrap();
        assert!(text.starts_with(POINTS_HEADER));
        assert!(
            !text.contains("e,a,m,3,1,1\n") && !text.ends_with(",1"),
            "{text}"
        );
        // Another experiment's directory is refused.
        let e = Store::open(&dir, "other").unwrap_err().to_string();
        assert!(e.contains("holds experiment 'e'"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn summaries_group_by_series_metric_and_x() {
        let pts = vec![
            pt("b", "m", 2.0, 1, 4.0),
            pt("b", "m", 1.0, 1, 1.0),
            pt("b", "m", 1.0, 2, 3.0),
            pt("a", "m", 1.0, 1, 7.0),
        ];
        let rows = summarise(&pts);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].series.as_str(), rows[0].x, rows[0].summary.n),
            ("b", 1.0, 2)
        );
        assert_eq!(rows[0].summary.mean, 2.0);
        assert_eq!((rows[1].series.as_str(), rows[1].x), ("b", 2.0));
        assert_eq!(rows[2].series, "a");
        let dir = tmpdir("summary");
        std::fs::create_dir_all(&dir).unwrap();
        write_summary(&dir.join("summary.csv"), &rows).unwrap();
        let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
        assert!(text.starts_with(SUMMARY_HEADER));
        assert!(text.contains("b,m,1,2,2,"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ledger_limits_and_trials_of_an_unfinished_measurement_are_cut_on_resume() {
        let dir = tmpdir("keyed");
        {
            let mut st = Store::open(&dir, "e").unwrap();
            st.append_ledger(
                "e,s,1,1,request,dut0 received,dut,10,0\n",
                "e,s,1,1,dut,first loss\n",
                "e,s,1,1,1,search,1000,1000,10,0,0,,true,none,ok\n",
            )
            .unwrap();
            st.append(&[pt("s", "drop_pps", 1.0, 1, 5.0)]).unwrap();
            // Killed after its ledger, before its points.
            st.append_ledger(
                "e,s,2,1,request,dut0 received,dut,10,0\n",
                "e,s,2,1,dut,first loss\n",
                "e,s,2,1,1,search,1000,1000,10,0,0,,true,none,ok\n",
            )
            .unwrap();
        }
        let _st = Store::open(&dir, "e").unwrap();
        let ledger = read_ledger(&dir);
        assert_eq!(ledger.len(), 1, "{ledger:?}");
        assert_eq!(ledger[0].x, 1.0);
        let limits = read_limits(&dir);
        assert_eq!(limits.len(), 1);
        assert_eq!(limits[0].limited_by, LimitedBy::Dut);
        let trials = std::fs::read_to_string(dir.join("trials.csv")).unwrap();
        assert_eq!(
            trials.lines().count(),
            2,
            "header and the finished one: {trials}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

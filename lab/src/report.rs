//! The files a run ends with, all derived from `points.csv`: `summary.csv`,
//! one SVG + PNG chart per metric, and `report.md` linking them, with a table
//! per metric (mean and 99 % CI per series and x), the ratios the experiment
//! asks for, the failures and what the experiment does not cover.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;

use crate::experiment::{Experiment, Param, Plan};
use crate::ledger::LimitedBy;
use crate::plot::Chart;
use crate::runner::{METRICS, RunOptions, RunSummary, fmt_secs};
use crate::store::{self, Point, Row, fmt_num};

/// Writes summary.csv, the plots and report.md into `opts.out`; returns
/// the paths written.
pub fn write(
    exp: &Experiment,
    plan: &Plan,
    opts: &RunOptions,
    points: &[Point],
    run: &RunSummary,
) -> Result<Vec<PathBuf>> {
    let out = &opts.out;
    let rows = store::summarise(points);
    let mut files = Vec::new();
    let summary = out.join("summary.csv");
    store::write_summary(&summary, &rows)?;
    files.push(summary);

    let series_names: Vec<String> = exp.series.iter().map(|s| s.name.clone()).collect();
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", exp.title);
    if !exp.description.is_empty() {
        let _ = writeln!(md, "{}\n", exp.description);
    }
    let _ = writeln!(
        md,
        "Experiment `{}` ({}), {} run: {} x {} per point{}, sweep {} = [{}].\n",
        exp.name,
        exp.origin,
        if opts.quick { "quick" } else { "full" },
        plan.repetitions,
        fmt_secs(plan.duration.as_secs_f64()),
        match opts.repetitions {
            Some(r) if r != exp.plan(opts.quick).repetitions => format!(
                " (`--repetitions {r}`: the file asks for {})",
                exp.plan(opts.quick).repetitions
            ),
            _ => String::new(),
        },
        exp.parameter,
        plan.values
            .iter()
            .map(|v| fmt_num(*v))
            .collect::<Vec<_>>()
            .join(", ")
    );
    how_obtained(&mut md, out);
    let _ = writeln!(
        md,
        "Error bars and intervals: 99 % confidence interval of the mean (Student t).\n"
    );
    let _ = writeln!(
        md,
        "Data: [points.csv](points.csv) (every measurement), [summary.csv](summary.csv), raw tool output in [raw/](raw/).\n"
    );
    if run.interrupted {
        let _ = writeln!(
            md,
            "**Interrupted (Ctrl-C): the results below are partial; re-run with the same `--out` to complete them.**\n"
        );
    }
    if let Some(n) = &exp.note {
        let _ = writeln!(md, "Note: {n}\n");
    }

    for m in METRICS {
        let mrows: Vec<Row> = rows
            .iter()
            .filter(|r| r.metric == m.name)
            .cloned()
            .collect();
        if mrows.is_empty() {
            continue;
        }
        let present: Vec<String> = series_names
            .iter()
            .filter(|s| mrows.iter().any(|r| &&r.series == s))
            .cloned()
            .collect();
        let chart = Chart {
            title: format!("{}: {}", exp.title, m.label),
            x_label: exp.parameter.label().to_owned(),
            y_label: m.label.to_owned(),
            unit: m.unit.to_owned(),
            series: present,
            rows: mrows.clone(),
            categorical: exp.parameter == Param::None,
            integer_x: matches!(
                exp.parameter,
                Param::Queues | Param::Checksums | Param::FrameSize
            ),
            capacity: m.capacity,
        };
        let plots = chart.write(&out.join(m.name))?;
        let bounds: Vec<String> = mrows
            .iter()
            .filter(|r| chart.hollow(r))
            .map(|r| format!("{} at {} = {}", r.series, exp.parameter, fmt_num(r.x)))
            .collect();
        let _ = writeln!(md, "## {} [{}]\n", m.label, m.unit);
        let _ = writeln!(
            md,
            "![{}]({}.svg) ([PNG]({}.png))\n",
            m.label, m.name, m.name
        );
        let _ = writeln!(
            md,
            "| series | {} | n | mean | 99 % CI | limited by |",
            exp.parameter
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---|---|");
        for r in &mrows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {}{} |",
                r.series,
                fmt_num(r.x),
                r.summary.n,
                fmt_val(r.summary.mean),
                if r.summary.has_interval() {
                    format!(
                        "{} .. {}",
                        fmt_val(r.summary.ci99_low),
                        fmt_val(r.summary.ci99_high)
                    )
                } else {
                    "none (1 repetition)".to_owned()
                },
                r.limited_by.map_or("-", LimitedBy::name),
                if chart.hollow(r) {
                    " (lower bound)"
                } else {
                    ""
                }
            );
        }
        md.push('\n');
        if !bounds.is_empty() {
            let _ = writeln!(
                md,
                "Not limited by the DUT, so lower bounds of its figure (hollow in the plot): {}.\n",
                bounds.join("; ")
            );
        }
        files.extend(plots);
    }

    if !exp.ratios.is_empty() {
        let xcol = if exp.parameter == Param::None {
            "x".to_owned()
        } else {
            exp.parameter.to_string()
        };
        let _ = writeln!(
            md,
            "## Ratios\n\n| ratio | {xcol} | metric | value |\n|---|---:|---|---:|"
        );
        for ratio in &exp.ratios {
            // The figure's metric of the numerator's measurement kind.
            let primary = exp
                .series
                .iter()
                .find(|s| s.name == ratio.numerator)
                .map(|s| crate::runner::metrics_of(s.measure)[0]);
            for num in rows
                .iter()
                .filter(|r| r.series == ratio.numerator && Some(r.metric.as_str()) == primary)
            {
                if let Some(den) = rows.iter().find(|r| {
                    r.series == ratio.denominator && r.metric == num.metric && r.x == num.x
                }) && den.summary.mean != 0.0
                {
                    let _ = writeln!(
                        md,
                        "| {} / {} | {} | {} | {:.3} |",
                        ratio.numerator,
                        ratio.denominator,
                        fmt_num(num.x),
                        num.metric,
                        num.summary.mean / den.summary.mean
                    );
                }
            }
        }
        md.push('\n');
    }

    knee_section(&mut md, exp, &rows);
    limits_section(&mut md, exp, out);
    trials_section(&mut md, exp, out);

    if !run.failures.is_empty() {
        let _ = writeln!(md, "## Failed points\n");
        for (s, x, e) in &run.failures {
            let _ = writeln!(md, "- {s}, {} = {}: {e}", exp.parameter, fmt_num(*x));
        }
        md.push('\n');
    }
    let report = out.join("report.md");
    store::write_atomic(&report, md.as_bytes())?;
    files.push(report);
    Ok(files)
}

/// "How these results were obtained": from run.json's last run.
fn how_obtained(md: &mut String, out: &std::path::Path) {
    let Some(r) = crate::provenance::read_run_file(out)
        .ok()
        .and_then(|f| f.runs.last().cloned())
    else {
        let _ = writeln!(md, "Machine: kernel {}, {} CPUs.\n", kernel(), cpus());
        return;
    };
    let m = &r.machine;
    let _ = writeln!(
        md,
        "## How these results were obtained\n\nFrom [run.json](run.json) (every `lab run` on this directory, with every command line it ran):\n"
    );
    let _ = writeln!(
        md,
        "- command: `{}` ({} .. {})",
        r.argv.join(" "),
        r.started,
        if r.finished.is_empty() {
            "unfinished"
        } else {
            &r.finished
        }
    );
    let _ = writeln!(
        md,
        "- experiment: `{}` from {}, sha256 `{}`",
        r.experiment.name, r.experiment.origin, r.experiment.sha256
    );
    let _ = writeln!(md, "- kernel: {}", m.kernel);
    let _ = writeln!(
        md,
        "- CPU: {} x {}; clocksource {} (available: {})",
        m.cpus, m.cpu_model, m.clocksource, m.clocksources_available
    );
    for (t, v) in &r.tools {
        let _ = writeln!(md, "- {t}: {v}");
    }
    let _ = writeln!(md, "- commands run: {} (in run.json)", r.commands.len());
    if !r.interfaces.is_empty() {
        let _ = writeln!(
            md,
            "\n| interface | driver | queues rx/tx | RPS/XPS | IRQs | features on |\n|---|---|---|---|---|---|"
        );
        for (name, i) in &r.interfaces {
            let placement: Vec<String> = i
                .placement
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                md,
                "| {name} | {} {} | {}/{} | {} | {} | {} |",
                i.driver.get("driver").map_or("?", String::as_str),
                i.driver.get("version").map_or("", String::as_str),
                i.rx_queues,
                i.tx_queues,
                placement.join(" "),
                if i.irqs.is_empty() {
                    "none".to_owned()
                } else {
                    i.irqs.len().to_string()
                },
                i.features_on.len()
            );
        }
    }
    md.push('\n');
}

/// The knee of a response-time curve: the lowest offered rate whose p99 is at least
/// twice the p99 at the lowest rate, or whose point the DUT or the path limited (it
/// lost frames). None when the curve stays flat and lossless.
pub fn knee(p99: &[(f64, f64, Option<LimitedBy>)]) -> Option<(f64, String)> {
    let mut pts: Vec<_> = p99.to_vec();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let base = pts.first()?.1;
    pts.iter().find_map(|&(x, v, by)| match by {
        Some(LimitedBy::Dut) => Some((x, "the DUT lost frames first here".to_owned())),
        Some(LimitedBy::Path) => Some((
            x,
            "the lab's path lost frames first here (not the DUT's knee)".to_owned(),
        )),
        _ if base > 0.0 && v >= 2.0 * base => Some((
            x,
            format!(
                "p99 {} us, {:.1} x the {} us at the lowest rate",
                fmt_val(v),
                v / base,
                fmt_val(base)
            ),
        )),
        _ => None,
    })
}

/// One series' line of "Where the response time rises".
fn knee_line(name: &str, p99: &[(f64, f64, Option<LimitedBy>)]) -> String {
    let top = p99.iter().map(|p| p.0).fold(0.0, f64::max);
    // Rates gen could not offer in full: the curve's end is the generator's there.
    let short: Vec<String> = p99
        .iter()
        .filter(|p| p.2 == Some(LimitedBy::Generator))
        .map(|p| fmt_num(p.0))
        .collect();
    let full = p99
        .iter()
        .filter(|p| p.2 != Some(LimitedBy::Generator))
        .map(|p| p.0)
        .fold(0.0, f64::max);
    match knee(p99) {
        Some((x, why)) => format!("- {}: knee at {} packets/s: {why}", name, fmt_num(x)),
        None if short.is_empty() => format!(
            "- {}: no knee up to {} packets/s (p99 within 2 x of the lowest rate's, nothing lost): the DUT was not loaded to its limit",
            name,
            fmt_num(top)
        ),
        None => format!(
            "- {}: no knee up to {} packets/s, the highest rate gen offered in full; at {} packets/s gen offered less than asked (generator-limited), so the DUT was not loaded to its limit and its knee, if any, lies beyond what this machine offered",
            name,
            fmt_num(full),
            short.join(", ")
        ),
    }
}

/// "Where the response time rises": the knee of each response-time series swept
/// over the rate.
fn knee_section(md: &mut String, exp: &Experiment, rows: &[Row]) {
    if exp.parameter != Param::Rate {
        return;
    }
    let mut lines = Vec::new();
    for s in exp
        .series
        .iter()
        .filter(|s| s.measure == crate::experiment::Measure::ResponseTime)
    {
        let p99: Vec<_> = rows
            .iter()
            .filter(|r| r.series == s.name && r.metric == "rtt_p99_us")
            .map(|r| (r.x, r.summary.mean, r.limited_by))
            .collect();
        if p99.is_empty() {
            continue;
        }
        lines.push(knee_line(&s.name, &p99));
    }
    if !lines.is_empty() {
        let _ = writeln!(
            md,
            "## Where the response time rises\n\n{}\n",
            lines.join("\n")
        );
    }
}

/// "Rate search trials": every NDR trial from trials.csv, per point.
fn trials_section(md: &mut String, exp: &Experiment, out: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(out.join("trials.csv")) else {
        return;
    };
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.splitn(15, ',').collect::<Vec<_>>())
        .filter(|f| f.len() == 15)
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Rate search trials\n\nEvery trial of the no-drop rate searches ([trials.csv](trials.csv)): `search` trials are short, `confirm` trials run the full duration; a trial passes when gen offered at least 99.5 % of the rate and the loss (and p99) stayed within the bounds.\n"
    );
    let _ = writeln!(
        md,
        "| series | {} | rep | # | kind | rate [packets/s] | offered | loss [%] | p99 [us] | pass | limited by |",
        exp.parameter
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|");
    for f in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f[1],
            f[2],
            f[3],
            f[4],
            f[5],
            f[6],
            f[7],
            f[10],
            if f[11].is_empty() { "-" } else { f[11] },
            if f[12] == "true" { "yes" } else { "**no**" },
            f[13]
        );
    }
    md.push('\n');
}

/// "What limited each point" and "Loss ledger": from limits.csv and ledger.csv.
fn limits_section(md: &mut String, exp: &Experiment, out: &std::path::Path) {
    let limits = store::read_limits(out);
    if limits.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## What limited each point\n\nFrom each measurement's loss ledger ([ledger.csv](ledger.csv), [limits.csv](limits.csv)), by the decision table in lab/README.md: `dut` = the value is the DUT's; `generator` = gen offered less than 99.5 % of the request, or the DUT kept up with all it was offered (a lower bound); `path` = the lab lost frames before the DUT; `none` = nothing saturated. Loss tolerance: the larger of 10 frames and 0.01 %.\n"
    );
    let _ = writeln!(
        md,
        "| series | {} | limited by (repetitions) | why (last repetition) |",
        exp.parameter
    );
    let _ = writeln!(md, "|---|---:|---|---|");
    let mut keys: Vec<(String, String)> = Vec::new();
    for l in &limits {
        let k = (l.series.clone(), fmt_num(l.x));
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (series, x) in &keys {
        let of: Vec<_> = limits
            .iter()
            .filter(|l| &l.series == series && &fmt_num(l.x) == x)
            .collect();
        let mut counts: Vec<(LimitedBy, usize)> = Vec::new();
        for l in &of {
            match counts.iter_mut().find(|(b, _)| *b == l.limited_by) {
                Some(c) => c.1 += 1,
                None => counts.push((l.limited_by, 1)),
            }
        }
        let by = counts
            .iter()
            .map(|(b, n)| format!("{b} x{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let why = of.last().map_or("", |l| l.reason.as_str());
        let _ = writeln!(md, "| {series} | {x} | {by} | {why} |");
    }
    md.push('\n');
    let ledger = store::read_ledger(out);
    if ledger.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Loss ledger\n\nPer point, its last repetition: frames counted at every stage the lab and the tools can see, read before the traffic and after it settled; `lost` = fewer than the stage before in its chain; `place` = who is to blame for a loss there.\n"
    );
    for (series, x) in &keys {
        let rep = ledger
            .iter()
            .filter(|l| &l.series == series && &fmt_num(l.x) == x)
            .map(|l| l.repetition)
            .max();
        let Some(rep) = rep else { continue };
        let _ = writeln!(
            md,
            "**{series}, {} = {x}** (repetition {rep})\n\n| chain | stage | place | packets | lost |\n|---|---|---|---:|---:|",
            exp.parameter
        );
        for l in ledger
            .iter()
            .filter(|l| &l.series == series && &fmt_num(l.x) == x && l.repetition == rep)
        {
            let lost = if l.lost > 0 {
                format!("**{}**", l.lost)
            } else {
                "0".into()
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {lost} |",
                l.chain, l.stage, l.place, l.packets
            );
        }
        md.push('\n');
    }
}

/// A value with sensible precision.
pub fn fmt_val(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".into(), |s| s.trim().to_owned())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_knee_is_a_doubled_p99_or_the_first_loss() {
        let flat = [(10e3, 3.0, None), (50e3, 3.5, None), (100e3, 5.9, None)];
        assert_eq!(knee(&flat), None);
        let rising = [(10e3, 3.0, None), (100e3, 9.0, None), (50e3, 4.0, None)];
        assert_eq!(knee(&rising).map(|k| k.0), Some(100e3));
        let lossy = [
            (10e3, 3.0, None),
            (50e3, 3.1, Some(LimitedBy::Dut)),
            (100e3, 9.0, None),
        ];
        let k = knee(&lossy).unwrap_or_default();
        assert_eq!(k.0, 50e3);
        assert!(k.1.contains("DUT"));
        let path = [(10e3, 3.0, None), (50e3, 3.1, Some(LimitedBy::Path))];
        assert!(knee(&path).unwrap_or_default().1.contains("not the DUT"));
    }

    #[test]
    fn no_knee_says_when_the_generator_ended_the_curve() {
        let clean = [(10e3, 3.0, None), (50e3, 3.5, None)];
        assert!(knee_line("s", &clean).contains("no knee up to 50000 packets/s (p99"));
        let short = [
            (10e3, 3.0, None),
            (150e3, 3.5, Some(LimitedBy::Generator)),
            (300e3, 3.6, Some(LimitedBy::Generator)),
        ];
        let l = knee_line("s", &short);
        assert!(
            l.contains("no knee up to 10000 packets/s, the highest rate gen offered in full"),
            "{l}"
        );
        assert!(
            l.contains("at 150000, 300000 packets/s gen offered less"),
            "{l}"
        );
    }
}

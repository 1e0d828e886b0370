//! Output files: HDR histogram interval log (V2 + deflate, the standard format that
//! HdrHistogram's tools read), the histogram CSV (`value,count`, as MoonGen writes it),
//! and the SVG plots (the percentile distribution of response times on HdrHistogram's
//! log axes: x = 1/(1-p), so 90 %, 99 %, 99.9 % are evenly spaced and the tail is as
//! readable as the median; and the percentiles per interval over time).
//!
//! Every file is written through an [`AtomicFile`]: an unnamed file in the destination's
//! directory, given its name only when complete; on error, early exit or a kill it
//! never gets one, so a half-written output never carries the requested name.

use std::io::Write;

pub use xdplayer::atomic_file::AtomicFile;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::session::TimelinePoint;

/// `value,count` for every recorded bucket (value: the bucket's lowest equivalent value in
/// ns, within 0.1 % of every sample in it).
pub fn write_hist_csv(w: &mut impl Write, h: &Histogram<u64>) -> std::io::Result<()> {
    writeln!(w, "value,count")?;
    for v in h.iter_recorded() {
        writeln!(
            w,
            "{},{}",
            h.lowest_equivalent(v.value_iterated_to()),
            v.count_at_value()
        )?;
    }
    Ok(())
}

/// The TTF used for text layout in the SVG (plotters' ab_glyph font backend).
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();

/// Registers DejaVu Sans as plotters' "sans-serif" once (the lab's plots do the same).
pub fn load_font() -> std::io::Result<()> {
    FONT.get_or_init(|| {
        let bytes = std::fs::read(FONT_PATH).map_err(|e| {
            format!("cannot read the plot font {FONT_PATH}: {e}; install it with `apt-get install fonts-dejavu-core`")
        })?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{FONT_PATH} is not a usable TrueType font"))
    })
    .clone()
    .map_err(std::io::Error::other)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> std::io::Error {
    std::io::Error::other(format!("plotting: {e:?}"))
}

/// The percentile distribution of `h` as HdrHistogram plots it: points
/// (1/(1-p), value in µs) for p from 0 up to the last recorded value, with x capped
/// at `1/(1-p)` of the largest quantile a histogram of this count can resolve.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    if h.is_empty() {
        return out;
    }
    let xcap = (h.len() as f64).max(10.0);
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let x = if q >= 1.0 {
            xcap
        } else {
            (1.0 / (1.0 - q)).min(xcap)
        };
        let y = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e3;
        if out
            .last()
            .is_some_and(|&(px, py): &(f64, f64)| px >= x && py >= y)
        {
            continue;
        }
        out.push((x, y));
    }
    out
}

/// `x` on the percentile axis (1/(1-p)) as a percentile label: 1 -> "0%",
/// 10 -> "90%", 1000 -> "99.9%".
pub fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let p = (1.0 - 1.0 / x) * 100.0;
    let digits = (x.log10().round() as usize).saturating_sub(2);
    format!("{p:.digits$}%")
}

/// Two panels in one SVG: the percentile distribution of response times (log-log,
/// HdrHistogram's convention) and the percentiles per interval over time.
pub fn write_svg(
    out: &mut impl Write,
    title: &str,
    h: &Histogram<u64>,
    timeline: &[TimelinePoint],
) -> std::io::Result<()> {
    load_font()?;
    let mut svg = String::new();
    draw_svg(&mut svg, title, h, timeline)?;
    out.write_all(svg.as_bytes())
}

fn draw_svg(
    svg: &mut String,
    title: &str,
    h: &Histogram<u64>,
    timeline: &[TimelinePoint],
) -> std::io::Result<()> {
    let root = SVGBackend::with_string(svg, (900, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (top, bottom) = root.split_vertically(450);

    let curve = percentile_curve(h);
    let xmax = curve.last().map_or(10.0, |p| p.0).max(10.0);
    let ymin = curve.first().map_or(0.1, |p| p.1).max(1e-3) / 1.5;
    let ymax = curve.iter().map(|p| p.1).fold(1e-3, f64::max) * 1.5;
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!("{title}: response time by percentile"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..xmax).log_scale(), (ymin..ymax).log_scale())
        .map_err(plot_err)?;
    c.configure_mesh()
        .x_desc("percentile")
        .y_desc("response time (µs)")
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()
        .map_err(plot_err)?;
    c.draw_series(LineSeries::new(curve.iter().copied(), &BLUE))
        .map_err(plot_err)?;

    let tmax = timeline.last().map(|p| p.t).unwrap_or(1.0).max(1e-3);
    let ymax = timeline.iter().map(|p| p.p99_9).max().unwrap_or(1).max(1) as f64 / 1e3 * 1.1;
    let mut c2 = ChartBuilder::on(&bottom)
        .caption("percentiles per interval", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..tmax, 0f64..ymax)
        .map_err(plot_err)?;
    c2.configure_mesh()
        .x_desc("time (s)")
        .y_desc("response time (µs)")
        .draw()
        .map_err(plot_err)?;
    type Series = (&'static str, RGBColor, fn(&TimelinePoint) -> u64);
    let series: [Series; 4] = [
        ("p50", BLUE, |p| p.p50),
        ("p90", GREEN, |p| p.p90),
        ("p99", RED, |p| p.p99),
        ("p99.9", MAGENTA, |p| p.p99_9),
    ];
    for (name, color, f) in series {
        c2.draw_series(LineSeries::new(
            timeline.iter().map(|p| (p.t, f(p) as f64 / 1e3)),
            &color,
        ))
        .map_err(plot_err)?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    c2.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_sums_to_count() {
        let mut h = Histogram::<u64>::new(3).expect("h");
        for v in [100u64, 100, 2000, 3_000_000] {
            h.record(v).expect("record");
        }
        let mut out = Vec::new();
        write_hist_csv(&mut out, &h).expect("csv");
        let s = String::from_utf8(out).expect("utf8");
        let total: u64 = s
            .lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .nth(1)
                    .and_then(|c| c.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(total, 4);
        assert!(s.starts_with("value,count\n100,2\n2000,1\n"), "{s}");
    }

    #[test]
    fn percentile_curve_is_monotone_and_reaches_the_tail() {
        let mut h = Histogram::<u64>::new(3).expect("h");
        // 10,000 samples: 9,990 at 2 µs, 10 at 1 ms (the demo's shape).
        h.record_n(2_000, 9_990).expect("record");
        h.record_n(1_000_000, 10).expect("record");
        let c = percentile_curve(&h);
        assert!(c.len() > 5, "{c:?}");
        assert!((c[0].0 - 1.0).abs() < 1e-9, "starts at p = 0");
        assert!(c.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        // The median sits at 2 µs, the maximum at 1 ms, past x = 1000 (99.9 %).
        let at = |x: f64| c.iter().find(|p| p.0 >= x).map(|p| p.1).expect("point");
        assert!((at(2.0) - 2.0).abs() < 0.01, "median {:?}", at(2.0));
        let last = c.last().expect("last");
        assert!((last.1 - 1000.0).abs() / 1000.0 < 0.001, "{last:?}");
        assert!(last.0 >= 1000.0, "{last:?}");
        assert!(percentile_curve(&Histogram::<u64>::new(3).expect("h")).is_empty());
    }

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(1e5), "99.999%");
    }

    #[test]
    fn svg_has_the_percentile_axis() {
        let mut h = Histogram::<u64>::new(3).expect("h");
        h.record_n(2_000, 999).expect("record");
        h.record(500_000).expect("record");
        let mut out = Vec::new();
        write_svg(&mut out, "t", &h, &[]).expect("svg");
        let svg = String::from_utf8(out).expect("utf-8");
        assert!(svg.contains("percentile"), "axis named");
        assert!(
            svg.contains("99.9%") || svg.contains("99%"),
            "tail labelled"
        );
    }
}

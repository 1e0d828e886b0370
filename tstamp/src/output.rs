//! Output files: HDR histogram interval log (V2 + deflate, the standard format that
//! HdrHistogram's tools read), the histogram CSV (`value,count`, as MoonGen writes it),
//! and the SVG plots (CDF of response times; percentiles over time).
//!
//! Every file is written under a temporary name next to its destination and renamed
//! into place only when complete ([`AtomicFile`]); on error or early exit the temporary
//! file is removed, so a half-written output never carries the requested name.

use std::io::Write;
use std::path::Path;

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

/// Two panels in one SVG: the CDF of response times (µs, from the histogram) and the
/// percentiles per interval over time.
pub fn write_svg(
    path: &Path,
    title: &str,
    h: &Histogram<u64>,
    timeline: &[TimelinePoint],
) -> std::io::Result<()> {
    load_font()?;
    let root = SVGBackend::new(path, (900, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (top, bottom) = root.split_vertically(450);

    let total = h.len().max(1) as f64;
    let mut cdf: Vec<(f64, f64)> = Vec::new();
    let mut acc = 0u64;
    for v in h.iter_recorded() {
        acc += v.count_at_value();
        cdf.push((
            h.highest_equivalent(v.value_iterated_to()) as f64 / 1e3,
            acc as f64 / total,
        ));
    }
    let xmax = cdf.last().map(|p| p.0).unwrap_or(1.0).max(1e-3) * 1.05;
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!("{title}: CDF of response times"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..xmax, 0f64..1.0)
        .map_err(plot_err)?;
    c.configure_mesh()
        .x_desc("response time (µs)")
        .y_desc("fraction")
        .draw()
        .map_err(plot_err)?;
    c.draw_series(LineSeries::new(cdf.iter().copied(), &BLUE))
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
}

//! Plots drawn like the paper's figures: one chart per metric, the swept
//! parameter on x, the metric on y (axes labelled with units), one coloured
//! line per series with its legend entry, and error bars spanning the 99 %
//! confidence interval of the mean. Written as SVG (plotters' SVG backend)
//! and PNG (bitmap backend; text through `ab_glyph` with DejaVu Sans loaded
//! from [`FONT_PATH`] at run time).
//!
//! Values are scaled for reading (packets/s shown in k or M) but the CSVs
//! keep raw units. When nothing is swept, x is categorical: one tick per
//! series.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::ledger::LimitedBy;
use crate::store::Row;

/// The TTF the PNG (and SVG text layout) uses.
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Registers DejaVu Sans as plotters' "sans-serif" (once).
pub fn load_font() -> Result<()> {
    FONT.get_or_init(|| {
        let bytes = std::fs::read(FONT_PATH)
            .map_err(|e| format!("cannot read the plot font {FONT_PATH}: {e}; install it with `apt-get install fonts-dejavu-core` (.ci/setup does)"))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{FONT_PATH} is not a usable TrueType font"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// Legend entry of hollow points.
pub const LOWER_BOUND_LABEL: &str = "hollow: not limited by the DUT (lower bound)";

/// One chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// x axis label with unit.
    pub x_label: String,
    /// y axis label (the unit is appended, scaled).
    pub y_label: String,
    /// Unit of the values.
    pub unit: String,
    /// Series names, in legend order.
    pub series: Vec<String>,
    /// Summary rows of this metric.
    pub rows: Vec<Row>,
    /// x is categorical (one tick per series).
    pub categorical: bool,
    /// x takes whole numbers only (queues, checksums): no fractional ticks.
    pub integer_x: bool,
    /// The metric is a capacity (a rate the DUT reached): a point where nothing
    /// was saturated (`limited_by = none`) is a lower bound too, and drawn hollow.
    pub capacity: bool,
}

impl Chart {
    /// A point drawn hollow: not limited by the DUT, so not the DUT's figure
    /// (a lower bound of a capacity).
    pub fn hollow(&self, r: &Row) -> bool {
        match r.limited_by {
            Some(LimitedBy::Generator | LimitedBy::Path) => true,
            Some(LimitedBy::None) => self.capacity,
            Some(LimitedBy::Dut) | None => false,
        }
    }
}

/// A tick label without needless decimals.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Scale for display: (divisor, prefix).
fn scale(max: f64) -> (f64, &'static str) {
    if max >= 2e6 {
        (1e6, "M")
    } else if max >= 2e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    }
}

fn scaled_unit(prefix: &str, unit: &str) -> String {
    match (prefix, unit) {
        ("", u) => u.to_owned(),
        (p, "packets/s") => format!("{p}packets/s"),
        (p, "updates/s") => format!("{p}updates/s"),
        (p, "answers/s") => format!("{p}answers/s"),
        (p, u) => format!("{p} x {u}"),
    }
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

impl Chart {
    /// Writes `base.svg` and `base.png`; returns their paths.
    pub fn write(&self, base: &Path) -> Result<Vec<PathBuf>> {
        load_font()?;
        let svg = base.with_extension("svg");
        let png = base.with_extension("png");
        {
            let root = SVGBackend::new(&svg, (900, 560)).into_drawing_area();
            self.draw(&root)?;
            root.present()
                .map_err(|e| anyhow!("write {}: {e:?}", svg.display()))?;
        }
        {
            let root = BitMapBackend::new(&png, (900, 560)).into_drawing_area();
            self.draw(&root)?;
            root.present()
                .map_err(|e| anyhow!("write {}: {e:?}", png.display()))?;
        }
        Ok(vec![svg, png])
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plot '{}': {e:?}", self.title);
        root.fill(&WHITE).map_err(err)?;
        let ymax_raw = self
            .rows
            .iter()
            .map(|r| r.summary.ci99_high.max(r.summary.mean))
            .fold(0.0_f64, f64::max);
        let (div, prefix) = scale(ymax_raw);
        // Headroom above the data for the legend.
        let ymax = if ymax_raw > 0.0 {
            ymax_raw / div * (1.2 + 0.06 * self.series.len() as f64)
        } else {
            1.0
        };
        let xs = |r: &Row| -> f64 {
            if self.categorical {
                self.series
                    .iter()
                    .position(|s| *s == r.series)
                    .map_or(0.0, |i| i as f64)
            } else {
                r.x
            }
        };
        let (xmin, xmax) = if self.categorical {
            (-0.5, self.series.len() as f64 - 0.5)
        } else {
            let lo = self.rows.iter().map(&xs).fold(f64::INFINITY, f64::min);
            let hi = self.rows.iter().map(&xs).fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() {
                (0.0, 1.0)
            } else {
                let pad = ((hi - lo) * 0.05).max(0.5);
                ((lo - pad).min(if lo >= 0.0 { 0.0 } else { lo }), hi + pad)
            }
        };
        let (xdiv, xprefix) = if self.categorical {
            (1.0, "")
        } else {
            scale(xmax)
        };
        let x_label = if xprefix.is_empty() {
            self.x_label.clone()
        } else {
            self.x_label
                .replace("[packets/s]", &format!("[{xprefix}packets/s]"))
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(xmin / xdiv..xmax / xdiv, 0.0..ymax)
            .map_err(err)?;
        let series = self.series.clone();
        let categorical = self.categorical;
        let integer_x = self.integer_x;
        let fmt_x = move |v: &f64| -> String {
            if categorical {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    series.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            } else if integer_x {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{}", v.round())
                } else {
                    String::new()
                }
            } else {
                tick(*v)
            }
        };
        let fmt_y = |v: &f64| tick(*v);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_label)
            .y_desc(format!(
                "{} [{}]",
                self.y_label,
                scaled_unit(prefix, &self.unit)
            ))
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .light_line_style(RGBColor(240, 240, 240));
        if self.categorical {
            mesh.x_labels(self.series.len() * 2 + 1);
        }
        mesh.draw().map_err(err)?;
        for (i, name) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let mut rows: Vec<&Row> = self.rows.iter().filter(|r| &r.series == name).collect();
            rows.sort_by(|a, b| a.x.total_cmp(&b.x));
            if rows.is_empty() {
                continue;
            }
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (xs(r) / xdiv, r.summary.mean / div))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().zip(&rows).map(|(&p, r)| {
                    if self.hollow(r) {
                        Circle::new(p, 5, colour.stroke_width(2))
                    } else {
                        Circle::new(p, 4, colour.filled())
                    }
                }))
                .map_err(err)?;
            chart
                .draw_series(rows.iter().filter(|r| r.summary.has_interval()).map(|r| {
                    ErrorBar::new_vertical(
                        xs(r) / xdiv,
                        r.summary.ci99_low / div,
                        r.summary.mean / div,
                        r.summary.ci99_high / div,
                        colour.stroke_width(1),
                        8,
                    )
                }))
                .map_err(err)?;
        }
        if self.rows.iter().any(|r| self.hollow(r)) {
            let grey = RGBColor(90, 90, 90);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(err)?
                .label(LOWER_BOUND_LABEL)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, grey.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(series: &str, x: f64, vals: &[f64]) -> Row {
        Row::sample(series, x, vals, Some(LimitedBy::Dut))
    }

    #[test]
    fn svg_and_png_are_written_with_every_series() {
        let dir = std::env::temp_dir().join(format!("lab-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let chart = Chart {
            title: "Drop rate vs queues".into(),
            x_label: "queues".into(),
            y_label: "drop rate".into(),
            unit: "packets/s".into(),
            series: vec!["native multi-flow".into(), "generic single-flow".into()],
            rows: vec![
                row("native multi-flow", 1.0, &[3.1e6, 3.3e6, 3.2e6]),
                row("native multi-flow", 2.0, &[5.0e6, 5.4e6]),
                row("generic single-flow", 1.0, &[1.0e6]),
                row("generic single-flow", 2.0, &[1.5e6, 1.4e6]),
            ],
            categorical: false,
            integer_x: true,
            capacity: true,
        };
        let files = chart.write(&dir.join("drop_pps")).unwrap();
        assert_eq!(files.len(), 2);
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains("native multi-flow") && svg.contains("generic single-flow"));
        assert!(svg.contains("Mpackets/s"), "y axis scaled to M");
        assert!(svg.contains("queues"));
        assert!(
            !svg.contains(LOWER_BOUND_LABEL),
            "every point DUT-limited: no lower-bound legend"
        );
        let png = std::fs::read(&files[1]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 5000);
        // Categorical: series names become the x ticks.
        let cat = Chart {
            categorical: true,
            rows: vec![
                row("native multi-flow", 0.0, &[1.0]),
                row("generic single-flow", 0.0, &[2.0, 2.2]),
            ],
            ..chart
        };
        let files = cat.write(&dir.join("cat")).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(
            svg.matches("generic single-flow").count() >= 2,
            "legend and tick"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn points_not_limited_by_the_dut_are_hollow_with_a_legend_entry() {
        let dir = std::env::temp_dir().join(format!("lab-plot-hollow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut g = row("s", 2.0, &[2.0e6]);
        g.limited_by = Some(LimitedBy::Generator);
        let mut n = row("s", 3.0, &[2.5e6]);
        n.limited_by = Some(LimitedBy::None);
        let chart = Chart {
            title: "t".into(),
            x_label: "queues".into(),
            y_label: "drop rate".into(),
            unit: "packets/s".into(),
            series: vec!["s".into()],
            rows: vec![row("s", 1.0, &[1.0e6]), g.clone(), n.clone()],
            categorical: false,
            integer_x: true,
            capacity: true,
        };
        assert!(!chart.hollow(&chart.rows[0]));
        assert!(chart.hollow(&g));
        assert!(
            chart.hollow(&n),
            "not saturated is a lower bound of a capacity"
        );
        let latency = Chart {
            capacity: false,
            ..chart.clone()
        };
        assert!(
            !latency.hollow(&n),
            "not saturated is the normal latency point"
        );
        assert!(latency.hollow(&g));
        let files = chart.write(&dir.join("hollow")).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains(LOWER_BOUND_LABEL));
        // Markers (the error bars add small open circles of their own): the two
        // hollow points and the legend's are open rings, the DUT-limited one filled.
        let markers: Vec<&str> = svg
            .split("<circle")
            .skip(1)
            .filter_map(|c| c.split("/>").next())
            .filter(|c| !c.contains("stroke-width=\"1\"") || c.contains("stroke=\"none\""))
            .collect();
        let hollow = markers
            .iter()
            .filter(|c| c.contains("fill=\"none\""))
            .count();
        assert_eq!(hollow, 3, "{markers:?}");
        assert_eq!(markers.len(), 4, "{markers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

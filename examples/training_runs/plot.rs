//! Log-log line plots with `plotters` (SVG backend): one line per optimizer.

use std::path::Path;

use plotters::prelude::*;

/// One curve: label, colour index, points (x > 0, y > 0; others are dropped).
pub struct Line {
    pub label: String,
    pub colour: usize,
    pub dashed: bool,
    pub thin: bool,
    pub points: Vec<(f64, f64)>,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

/// Writes a log-log plot of `lines` to `path`.
pub fn plot(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>> {
    let keep = |&(x, y): &(f64, f64)| x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|p| keep(p))
    {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 || y0 > y1 {
        return Err("nothing to plot".into());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_horizontally(740);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(
            (x0 / 1.5..x1 * 1.5).log_scale(),
            (y0 / 2.0..y1 * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    let font = ("sans-serif", 15).into_font();
    let mut ly = 50;
    for l in lines {
        let c = COLOURS[l.colour % COLOURS.len()];
        let pts: Vec<(f64, f64)> = l.points.iter().copied().filter(keep).collect();
        let style = c.stroke_width(if l.dashed || l.thin { 1 } else { 2 });
        if l.dashed {
            chart.draw_series(DashedLineSeries::new(pts, 6, 4, style))?;
        } else {
            chart.draw_series(LineSeries::new(pts, style))?;
        }
        legend_area.draw(&PathElement::new(vec![(10, ly), (45, ly)], style))?;
        legend_area.draw(&Text::new(l.label.clone(), (55, ly - 8), font.clone()))?;
        ly += 26;
    }
    root.present()?;
    Ok(())
}

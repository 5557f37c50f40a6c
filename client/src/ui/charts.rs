//! Outcome measures drawn over time: one SVG chart per measure, drawn on
//! the server so it reads without JavaScript, with the published cut-offs
//! of PHQ-9 and GAD-7 marked, and the same scores as a table beneath it
//! for a screen reader and for anyone who wants the numbers.

use casebook::notes::{Series, band, standard};
use maud::{Markup, html};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 220.0;
/// Room for the axis labels on the left and the dates below.
const LEFT: f64 = 44.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// Days since the first session the series holds, by each point's date; a
/// date that does not parse sits where its order puts it.
fn days(s: &Series) -> Vec<f64> {
    let parsed: Vec<Option<jiff::civil::Date>> =
        s.points.iter().map(|p| p.date.parse().ok()).collect();
    let first = parsed.iter().flatten().min().copied();
    parsed
        .iter()
        .enumerate()
        .map(|(i, d)| match (d, first) {
            (Some(d), Some(f)) => d
                .since(f)
                .map_or(i as f64, |span| f64::from(span.get_days())),
            _ => i as f64,
        })
        .collect()
}

/// The value range drawn: a standard measure's whole scale; another
/// measure's scores with a little room above and below.
fn range(s: &Series) -> (f64, f64) {
    if let Some(m) = standard(&s.measure) {
        return (0.0, f64::from(m.max));
    }
    let lo = s
        .points
        .iter()
        .map(|p| p.value)
        .fold(f64::INFINITY, f64::min);
    let hi = s
        .points
        .iter()
        .map(|p| p.value)
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(1.0);
    (lo.min(0.0_f64.max(lo - pad)), hi + pad)
}

/// A number as a label: whole numbers without a decimal point.
fn num(v: f64) -> String {
    format!("{}", (v * 100.0).round() / 100.0)
}

/// What the chart says, for a reader that cannot see it.
fn summary(s: &Series) -> String {
    let points: Vec<String> = s
        .points
        .iter()
        .map(|p| format!("{} on {}", num(p.value), p.date))
        .collect();
    format!(
        "{} over {} session(s): {}",
        s.measure,
        s.points.len(),
        points.join(", ")
    )
}

/// One measure's chart and table.
pub(super) fn chart(s: &Series) -> Markup {
    let (lo, hi) = range(s);
    let x_days = days(s);
    let span = x_days.iter().copied().fold(0.0, f64::max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |d: f64| match span > 0.0 {
        true => LEFT + d / span * plot_w,
        false => LEFT + plot_w / 2.0,
    };
    let y = |v: f64| TOP + (hi - v) / (hi - lo).max(f64::EPSILON) * plot_h;
    let line: Vec<String> = s
        .points
        .iter()
        .zip(&x_days)
        .map(|(p, d)| format!("{:.1},{:.1}", x(*d), y(p.value)))
        .collect();
    let cut_offs: Vec<(f64, &str)> = standard(&s.measure)
        .map(|m| {
            m.bands
                .iter()
                .filter(|(from, _)| *from > 0)
                .map(|(from, b)| (f64::from(*from), *b))
                .collect()
        })
        .unwrap_or_default();
    let (first, last) = (s.points.first(), s.points.last());
    html! {
        figure.chart {
            figcaption { (s.measure) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                role="img" aria-label=(summary(s)) {
                title { (summary(s)) }
                // Every SVG element closed explicitly: in an HTML page a
                // bare `<rect>` would swallow what follows it.
                rect x=(LEFT) y=(TOP) width=(plot_w) height=(plot_h) fill="#fff" stroke="#c8ccd4" {}
                @for (v, name) in &cut_offs {
                    line.cutoff x1=(LEFT) x2=(LEFT + plot_w) y1=(y(*v)) y2=(y(*v))
                        stroke="#b7791f" stroke-dasharray="4 3" {}
                    text x=(LEFT + plot_w + 6.0) y=(y(*v) + 4.0) font-size="11" fill="#7a5212" {
                        (num(*v)) " " (name)
                    }
                }
                text x=(LEFT - 6.0) y=(TOP + 4.0) font-size="11" text-anchor="end" fill="#555" { (num(hi)) }
                text x=(LEFT - 6.0) y=(TOP + plot_h + 4.0) font-size="11" text-anchor="end" fill="#555" { (num(lo)) }
                @if let (Some(f), Some(l)) = (first, last) {
                    text x=(LEFT) y=(HEIGHT - 8.0) font-size="11" fill="#555" { (f.date) }
                    @if s.points.len() > 1 {
                        text x=(LEFT + plot_w) y=(HEIGHT - 8.0) font-size="11" text-anchor="end" fill="#555" { (l.date) }
                    }
                }
                polyline points=(line.join(" ")) fill="none" stroke="#24364b" stroke-width="2" {}
                @for (p, d) in s.points.iter().zip(&x_days) {
                    circle.point cx=(format!("{:.1}", x(*d))) cy=(format!("{:.1}", y(p.value))) r="4"
                        fill=(if p.signed { "#24364b" } else { "#fff" }) stroke="#24364b" stroke-width="2" {
                        title { (p.date) ": " (num(p.value)) @if !p.signed { " (draft)" } }
                    }
                }
            }
            table.scores {
                thead { tr { th { "Date" } th { (s.measure) } th { "Band" } th { "Note" } } }
                tbody {
                    @for p in &s.points {
                        tr {
                            td { (p.date) }
                            td { (num(p.value)) }
                            td { (band(&s.measure, p.value).unwrap_or("–")) }
                            td { @if p.signed { "signed" } @else { "draft" } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use casebook::notes::ScorePoint;

    fn series(measure: &str, points: &[(&str, f64)]) -> Series {
        Series {
            measure: measure.into(),
            points: points
                .iter()
                .map(|(d, v)| ScorePoint {
                    date: d.to_string(),
                    note_id: d.to_string(),
                    value: *v,
                    signed: true,
                })
                .collect(),
        }
    }

    #[test]
    fn phq9_is_drawn_on_its_scale_with_its_cut_offs() {
        let s = series("PHQ-9", &[("2026-01-01", 27.0), ("2026-01-31", 0.0)]);
        let svg = chart(&s).into_string();
        // The whole scale: 27 at the top of the plot, 0 at its foot, the
        // first session at the left edge and the last at the right.
        assert!(svg.contains(r#"points="44.0,12.0 410.0,190.0""#), "{svg}");
        for cut in ["5 mild", "10 moderate", "15 moderately severe", "20 severe"] {
            assert!(svg.contains(cut), "{cut}");
        }
        assert!(svg.contains("PHQ-9 over 2 session(s): 27 on 2026-01-01, 0 on 2026-01-31"));
        // No element left open, which an HTML parser would nest the rest in.
        for tag in ["rect", "line", "polyline", "circle", "text"] {
            assert_eq!(
                svg.matches(&format!("<{tag} ")).count(),
                svg.matches(&format!("</{tag}>")).count(),
                "{tag}: {svg}"
            );
        }
    }

    #[test]
    fn another_measure_and_one_session_are_drawn_too() {
        let one = chart(&series("Sleep <hours>", &[("2026-01-01", 6.5)])).into_string();
        assert!(one.contains("Sleep &lt;hours&gt;") && !one.contains("<hours>"));
        assert!(!one.contains("cutoff"));
        let odd = chart(&series("x", &[("not a date", 1.0), ("2026-01-01", 1.0)]));
        assert!(odd.into_string().contains("polyline"));
    }
}

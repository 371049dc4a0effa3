//! Charts drawn on the server as SVG: the month's visits by service (a pie) and the daily trend
//! of visits and average score. No script draws anything.

use std::fmt::Write;

use jiff::civil::Date;

use crate::reports::{Tally, format_average, format_percent};

const PALETTE: [&str; 10] = [
    "#2f6db5", "#e07b39", "#3a9d5d", "#c43d4b", "#8a5cc2", "#2aa3a3", "#b59a2f", "#6b7a8f",
    "#d45b9c", "#7a4a2a",
];

/// Escapes text for XML and HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub struct LegendEntry {
    pub color: &'static str,
    pub label: String,
    pub count: i64,
    pub percent: String,
}

pub struct PieChart {
    pub svg: String,
    pub legend: Vec<LegendEntry>,
    pub total: i64,
}

/// A pie of `slices` (label, count); the largest first, the tail beyond nine merged as «other».
pub fn pie(mut slices: Vec<(String, i64)>, other_label: &str) -> PieChart {
    slices.retain(|(_, count)| *count > 0);
    slices.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if slices.len() > PALETTE.len() {
        let rest: i64 = slices[PALETTE.len() - 1..].iter().map(|s| s.1).sum();
        slices.truncate(PALETTE.len() - 1);
        slices.push((other_label.to_string(), rest));
    }
    let total: i64 = slices.iter().map(|s| s.1).sum();
    let mut svg = String::from(
        r#"<svg class="pie" viewBox="-110 -110 220 220" width="220" height="220" role="img" xmlns="http://www.w3.org/2000/svg">"#,
    );
    let mut legend = Vec::new();
    let mut angle = -std::f64::consts::FRAC_PI_2;
    for (index, (label, count)) in slices.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let share = *count as f64 / total as f64;
        let percent = format_percent(share * 100.0);
        let title = format!("{}: {} ({})", escape(label), count, percent);
        if slices.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle r="100" fill="{color}"><title>{title}</title></circle>"#
            );
        } else {
            let end = angle + share * std::f64::consts::TAU;
            let (x1, y1) = (100.0 * angle.cos(), 100.0 * angle.sin());
            let (x2, y2) = (100.0 * end.cos(), 100.0 * end.sin());
            let large = i32::from(share > 0.5);
            let _ = write!(
                svg,
                r##"<path d="M0,0 L{x1:.2},{y1:.2} A100,100 0 {large} 1 {x2:.2},{y2:.2} Z" fill="{color}" stroke="#fff" stroke-width="1"><title>{title}</title></path>"##
            );
            angle = end;
        }
        legend.push(LegendEntry {
            color,
            label: label.clone(),
            count: *count,
            percent,
        });
    }
    svg.push_str("</svg>");
    PieChart { svg, legend, total }
}

/// Bars of visits per day and a line of the day's average score (1 to 3).
pub fn trend(days: &[(Date, Tally)], visits_label: &str, average_label: &str) -> String {
    const W: f64 = 720.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 40.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 30.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let max = days.iter().map(|(_, t)| t.visits).max().unwrap_or(0).max(1);
    let step = plot_w / days.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg class="trend" viewBox="0 0 {W} {H}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Axes and scale labels.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{y}" x2="{x}" y2="{y}" stroke="#999"/><text x="{lx}" y="{ty}" font-size="10" text-anchor="end">{max}</text><text x="{lx}" y="{y}" font-size="10" text-anchor="end">0</text><text x="{rx}" y="{ty}" font-size="10">3</text><text x="{rx}" y="{y}" font-size="10">1</text>"##,
        y = TOP + plot_h,
        x = LEFT + plot_w,
        lx = LEFT - 4.0,
        rx = LEFT + plot_w + 4.0,
        ty = TOP + 8.0,
    );
    let mut points = Vec::new();
    for (index, (date, tally)) in days.iter().enumerate() {
        let x = LEFT + step * index as f64;
        let height = plot_h * tally.visits as f64 / max as f64;
        let label = date.strftime("%d.%m").to_string();
        let average = tally.average().map(format_average).unwrap_or_default();
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{height:.1}" fill="#9dbbe0"><title>{label}: {visits_label} {visits}, {average_label} {average}</title></rect>"##,
            y = TOP + plot_h - height,
            w = (step - 2.0).max(1.0),
            visits = tally.visits,
        );
        if let Some(avg) = tally.average() {
            let cy = TOP + plot_h - plot_h * (avg - 1.0) / 2.0;
            points.push(format!("{:.1},{cy:.1}", x + step / 2.0));
        }
        if index % 5 == 0 || index + 1 == days.len() {
            let _ = write!(
                svg,
                r#"<text x="{tx:.1}" y="{ty}" font-size="10" text-anchor="middle">{label}</text>"#,
                tx = x + step / 2.0,
                ty = H - 12.0,
            );
        }
    }
    if !points.is_empty() {
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#c43d4b" stroke-width="2"/>"##,
            points.join(" ")
        );
        for point in &points {
            if let Some((cx, cy)) = point.split_once(',') {
                let _ = write!(
                    svg,
                    r##"<circle cx="{cx}" cy="{cy}" r="2.5" fill="#c43d4b"/>"##
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pie_shares_add_up_and_labels_are_escaped() {
        let chart = pie(
            vec![
                ("A <b>".into(), 45),
                ("B".into(), 41),
                ("C".into(), 12),
                ("D".into(), 2),
                ("none".into(), 0),
            ],
            "other",
        );
        assert_eq!(chart.total, 100);
        assert_eq!(chart.legend.len(), 4);
        assert_eq!(chart.legend[0].percent, "45\u{a0}%");
        assert!(chart.svg.contains("A &lt;b&gt;"));
        assert_eq!(chart.svg.matches("<path").count(), 4);
    }

    #[test]
    fn a_single_slice_is_a_circle() {
        let chart = pie(vec![("A".into(), 3)], "other");
        assert!(chart.svg.contains("<circle"));
    }
}

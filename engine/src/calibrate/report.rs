//! The calibration report as a page a person would rather read than JSON:
//! each chart's patches (measured after the fit beside the reference, with
//! their dE2000), the lens-shading surface per site, black levels, the
//! noise points and fit, the CT curve, what the tuning took and warnings.
//! One self-contained HTML file with inline SVG.

use super::Report;
use super::colour::{lab_d50_to_linear_srgb, srgb_encode};
use std::fmt::Write;

fn css_rgb(lab: [f64; 3]) -> String {
    let c =
        lab_d50_to_linear_srgb(lab).map(|v| (srgb_encode(v.clamp(0.0, 1.0)) * 255.0).round() as u8);
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A colour for a gain in [lo, hi] (blue .. red).
fn heat(v: f32, lo: f32, hi: f32) -> String {
    let t = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let r = (255.0 * t) as u8;
    let b = (255.0 * (1.0 - t)) as u8;
    format!(
        "rgb({r},{},{b})",
        (80.0 + 100.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8
    )
}

/// The page for `rep` (and the tuning it made, `lsc` its lens shading).
pub fn html(rep: &Report, lsc: Option<&crate::stages::lens_shading::LensShadingParams>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><title>ISP Studio calibration</title><style>\
         body{{font-family:sans-serif;margin:24px;background:#f4f4f4;color:#222}} table{{border-collapse:collapse}}\
         td,th{{padding:3px 8px;border-bottom:1px solid #ccc;font-size:13px}} .warn{{color:#a40}} h2{{margin-top:32px}}\
         </style></head><body><h1>Calibration report</h1>"
    );
    if !rep.warnings.is_empty() {
        h.push_str("<h2>Warnings</h2><ul>");
        for w in &rep.warnings {
            let _ = write!(h, "<li class=warn>{}</li>", esc(w));
        }
        h.push_str("</ul>");
    }
    h.push_str("<h2>What the tuning took</h2><ul>");
    for a in &rep.applied {
        let _ = write!(h, "<li>{}</li>", esc(a));
    }
    h.push_str("</ul>");
    if let Some(b) = &rep.black {
        let _ = write!(
            h,
            "<h2>Black level</h2><table><tr><th></th><th>R</th><th>Gr</th><th>Gb</th><th>B</th></tr>\
             <tr><td>pedestal (DN)</td>{}</tr><tr><td>spread (DN)</td>{}</tr></table><p>{} dark frame(s)</p>",
            b.levels
                .iter()
                .map(|v| format!("<td>{v:.2}</td>"))
                .collect::<String>(),
            b.std
                .iter()
                .map(|v| format!("<td>{v:.2}</td>"))
                .collect::<String>(),
            b.frames
        );
    }
    for c in &rep.charts {
        let _ = write!(
            h,
            "<h2>Chart: {}{}</h2><p>{}; mean dE2000 {:.2} (max {:.2}) after, {:.2} (max {:.2}) with the base tuning's CCM</p>",
            esc(&c.name),
            c.ct.map(|t| format!(" at {t:.0} K")).unwrap_or_default(),
            esc(&c.found.method),
            c.after.mean,
            c.after.max,
            c.before.mean,
            c.before.max
        );
        // Swatches: the top half measured (after the fit), the bottom the reference.
        let s = 90.0;
        let _ = write!(
            h,
            "<svg width={} height={} style='background:#111'>",
            6.0 * s + 10.0,
            4.0 * s + 10.0
        );
        for (i, p) in c.patches.iter().enumerate() {
            let (x, y) = (5.0 + (i % 6) as f64 * s, 5.0 + (i / 6) as f64 * s);
            let _ = write!(
                h,
                "<rect x={x} y={y} width={w} height={hh} fill='{a}'/><rect x={x} y={y2} width={w} height={hh} fill='{r}'/>\
                 <text x={tx} y={ty} font-size=13 fill='{tc}' text-anchor=middle>{d:.1}{cl}</text>",
                w = s - 6.0,
                hh = (s - 6.0) / 2.0,
                y2 = y + (s - 6.0) / 2.0,
                a = css_rgb(p.after_lab),
                r = css_rgb(p.reference_lab),
                tx = x + (s - 6.0) / 2.0,
                ty = y + (s - 6.0) / 2.0 + 5.0,
                tc = if p.reference_lab[0] > 55.0 {
                    "#000"
                } else {
                    "#fff"
                },
                d = p.de_after,
                cl = if p.clipped { " clip" } else { "" },
            );
        }
        h.push_str("</svg><p>Each patch: measured with the fitted CCM (top) over the reference (bottom), its dE2000.</p>");
        h.push_str("<table><tr><th>#</th><th>patch</th><th>camera RGB</th><th>dE before</th><th>dE after</th></tr>");
        for (i, p) in c.patches.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1} {:.1} {:.1}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                i + 1,
                esc(p.name),
                p.camera[0],
                p.camera[1],
                p.camera[2],
                p.de_before,
                p.de_after
            );
        }
        let m = c.ccm;
        let _ = write!(
            h,
            "</table><p>CCM: [{:.4} {:.4} {:.4}] [{:.4} {:.4} {:.4}] [{:.4} {:.4} {:.4}]; white balance {:.4} 1 {:.4}</p>",
            m[0][0],
            m[0][1],
            m[0][2],
            m[1][0],
            m[1][1],
            m[1][2],
            m[2][0],
            m[2][1],
            m[2][2],
            c.wb_gains[0],
            c.wb_gains[2]
        );
    }
    if !rep.ct_curve.is_empty() {
        h.push_str("<h2>Colour-temperature curve</h2><table><tr><th>CT (K)</th><th>R/G</th><th>B/G</th></tr>");
        for p in &rep.ct_curve {
            let _ = write!(
                h,
                "<tr><td>{:.0}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                p[0], p[1], p[2]
            );
        }
        h.push_str("</table>");
    }
    if let (Some(r), Some(p)) = (&rep.lens_shading, lsc) {
        h.push_str("<h2>Lens shading</h2><p>Gain per grid point, per site (blue 1 .. red the largest).</p>");
        let hi = p.gains.iter().flatten().cloned().fold(1.0f32, f32::max);
        let cell = 12.0;
        for (s, name) in ["R", "Gr", "Gb", "B"].iter().enumerate() {
            let _ = write!(
                h,
                "<figure style='display:inline-block'><svg width={} height={}>",
                p.grid_width as f64 * cell,
                p.grid_height as f64 * cell
            );
            for j in 0..p.grid_height {
                for i in 0..p.grid_width {
                    let g = p.gains[s][j * p.grid_width + i];
                    let _ = write!(
                        h,
                        "<rect x={} y={} width={cell} height={cell} fill='{}'><title>{g:.3}</title></rect>",
                        i as f64 * cell,
                        j as f64 * cell,
                        heat(g, 1.0, hi)
                    );
                }
            }
            let _ = write!(
                h,
                "</svg><figcaption>{name}: up to {:.3}</figcaption></figure> ",
                p.gains[s].iter().cloned().fold(0.0f32, f32::max)
            );
        }
        h.push_str("<table><tr><th>flat</th><th>corner/centre R Gr Gb B</th><th>residual max</th><th>residual RMS</th></tr>");
        for f in &r.flats {
            let pct = |v: &[f32; 4]| {
                v.iter()
                    .map(|x| format!("{:.2}%", 100.0 * x))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.name),
                f.falloff
                    .iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                pct(&f.residual_max),
                pct(&f.residual_rms)
            );
        }
        h.push_str("</table>");
    }
    if let Some(n) = &rep.noise {
        let _ = write!(
            h,
            "<h2>Noise</h2><p>From {}; at unity gain: shot {} DN per DN, read {} DN²</p>",
            esc(&n.source),
            n.shot
                .iter()
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(" "),
            n.read
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (w, hh) = (480.0, 240.0);
        let xmax = n
            .points
            .iter()
            .flatten()
            .map(|p| p[0])
            .fold(1.0f32, f32::max) as f64;
        let ymax = n
            .points
            .iter()
            .flatten()
            .map(|p| p[1])
            .fold(1.0f32, f32::max) as f64;
        let _ = write!(h, "<svg width={w} height={hh} style='background:#fff'>");
        let colours = ["#d22", "#2a2", "#282", "#22d"];
        for (s, pts) in n.points.iter().enumerate() {
            for p in pts {
                let _ = write!(
                    h,
                    "<circle cx={:.1} cy={:.1} r=2 fill='{}'/>",
                    p[0] as f64 / xmax * w,
                    hh - p[1] as f64 / ymax * hh,
                    colours[s]
                );
            }
            let g = n.gain as f64;
            let line = |x: f64| n.shot[s] as f64 * g * x + n.read[s] as f64 * g * g;
            let _ = write!(
                h,
                "<line x1=0 y1={:.1} x2={w} y2={:.1} stroke='{}'/>",
                hh - line(0.0) / ymax * hh,
                hh - line(xmax) / ymax * hh,
                colours[s]
            );
        }
        h.push_str("</svg><p>Variance against mean (DN above black) at the capture's gain: R, Gr, Gb, B.</p>");
    }
    h.push_str("</body></html>\n");
    h
}

//! The CCM from a measured chart: white balance from the grey patches, the
//! exposure from their luminance, then the 3x3 matrix with rows summing to 1
//! (white stays white) that minimises the mean CIEDE2000 against the chart's
//! reference values (least squares in linear sRGB to start, then
//! Nelder-Mead on the six free coefficients).

use super::chart::{Found, Measured};
use super::colour::{
    COLORCHECKER_24, GREY_PATCHES, ciede2000, lab_d50_to_linear_srgb, linear_srgb_to_lab_d50,
};
use serde::Serialize;

type M3 = [[f64; 3]; 3];

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DeStats {
    pub mean: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PatchFit {
    pub name: &'static str,
    /// Camera RGB above black, as measured.
    pub camera: [f64; 3],
    pub reference_lab: [f64; 3],
    /// Lab D50 with the base tuning's CCM, and with the fitted one.
    pub before_lab: [f64; 3],
    pub after_lab: [f64; 3],
    pub de_before: f64,
    pub de_after: f64,
    /// Left out of the fit (a clipped sample in its window).
    pub clipped: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChartFit {
    pub name: String,
    pub ct: Option<f32>,
    pub found: Found,
    pub patches: Vec<PatchFit>,
    /// White balance from the grey patches (green 1).
    pub wb_gains: [f64; 3],
    /// R/G and B/G of the grey patches (a point of the CT curve).
    pub grey_rb: [f64; 2],
    /// The scale from white-balanced camera values to reference luminance.
    pub exposure: f64,
    pub ccm: M3,
    pub before: DeStats,
    pub after: DeStats,
    pub warnings: Vec<String>,
}

fn apply(m: &M3, c: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| m[r][0] * c[0] + m[r][1] * c[1] + m[r][2] * c[2])
}

/// The matrix of six free coefficients (rows summing to 1).
fn from_free(x: &[f64; 6]) -> M3 {
    std::array::from_fn(|r| [x[2 * r], x[2 * r + 1], 1.0 - x[2 * r] - x[2 * r + 1]])
}

/// The free parameters ([`from_free`]: each row's sum fixed at 1) of the
/// matrix taking `cams` nearest `targets` in the least-squares sense, over
/// the patches `used`; a row whose system is singular stays 0.
fn least_squares_start(cams: &[[f64; 3]], targets: &[[f64; 3]], used: &[usize]) -> [f64; 6] {
    let mut x0 = [0.0f64; 6];
    for row in 0..3 {
        let (mut a11, mut a12, mut a22, mut b1, mut b2) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &i in used {
            let c = cams[i];
            let (u, v) = (c[0] - c[2], c[1] - c[2]);
            let t = targets[i][row] - c[2];
            a11 += u * u;
            a12 += u * v;
            a22 += v * v;
            b1 += u * t;
            b2 += v * t;
        }
        let det = a11 * a22 - a12 * a12;
        if det.abs() > 1e-18 {
            x0[2 * row] = (b1 * a22 - b2 * a12) / det;
            x0[2 * row + 1] = (a11 * b2 - a12 * b1) / det;
        }
    }
    x0
}

/// Nelder-Mead on `f` from `x0` (initial simplex `step` along each axis).
fn nelder_mead(f: &dyn Fn(&[f64; 6]) -> f64, x0: [f64; 6], step: f64, iters: usize) -> [f64; 6] {
    let mut pts: Vec<([f64; 6], f64)> = (0..7)
        .map(|i| {
            let mut p = x0;
            if i > 0 {
                p[i - 1] += step;
            }
            (p, f(&p))
        })
        .collect();
    for _ in 0..iters {
        pts.sort_by(|a, b| a.1.total_cmp(&b.1));
        if (pts[6].1 - pts[0].1).abs() < 1e-10 {
            break;
        }
        let mut c = [0.0; 6];
        for (p, _) in &pts[..6] {
            for k in 0..6 {
                c[k] += p[k] / 6.0;
            }
        }
        let towards =
            |t: f64| -> [f64; 6] { std::array::from_fn(|k| c[k] + t * (pts[6].0[k] - c[k])) };
        let r = towards(-1.0);
        let fr = f(&r);
        if fr < pts[0].1 {
            let e = towards(-2.0);
            let fe = f(&e);
            pts[6] = if fe < fr { (e, fe) } else { (r, fr) };
        } else if fr < pts[5].1 {
            pts[6] = (r, fr);
        } else {
            let k = towards(if fr < pts[6].1 { -0.5 } else { 0.5 });
            let fk = f(&k);
            if fk < pts[6].1.min(fr) {
                pts[6] = (k, fk);
            } else {
                let best = pts[0].0;
                for p in pts.iter_mut().skip(1) {
                    p.0 = std::array::from_fn(|k| best[k] + 0.5 * (p.0[k] - best[k]));
                    p.1 = f(&p.0);
                }
            }
        }
    }
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    pts[0].0
}

/// Fit the chart `name` (lit at `ct`) measured as `patches`.
pub fn fit_chart(
    name: &str,
    ct: Option<f32>,
    found: Found,
    patches: Vec<Measured>,
    base_ccm: &[[f32; 3]; 3],
) -> Result<ChartFit, String> {
    if patches.len() != 24 {
        return Err(format!(
            "{} patches measured, a ColorChecker has 24",
            patches.len()
        ));
    }
    let mut warnings = Vec::new();
    // White balance and exposure from the greys between white and black
    // (white may clip, black is mostly noise).
    let greys: Vec<usize> = GREY_PATCHES[1..5]
        .iter()
        .copied()
        .filter(|&i| !patches[i].clipped)
        .collect();
    if greys.len() < 2 {
        return Err("fewer than two grey patches are unclipped: the chart is overexposed".into());
    }
    let sum = |c: usize| greys.iter().map(|&i| patches[i].rgb[c]).sum::<f64>();
    let (r, g, b) = (sum(0), sum(1), sum(2));
    if r <= 0.0 || g <= 0.0 || b <= 0.0 {
        return Err("the grey patches measure no signal: is the black level right?".into());
    }
    let wb = [g / r, 1.0, g / b];
    let refs: Vec<[f64; 3]> = COLORCHECKER_24.iter().map(|(_, lab)| *lab).collect();
    let ref_y = |i: usize| {
        lab_d50_to_linear_srgb(refs[i])
            .iter()
            .zip([0.2126729, 0.7151522, 0.0721750])
            .map(|(v, w)| v * w)
            .sum::<f64>()
    };
    let num: f64 = greys.iter().map(|&i| ref_y(i) * patches[i].rgb[1]).sum();
    let den: f64 = greys.iter().map(|&i| patches[i].rgb[1].powi(2)).sum();
    let exposure = num / den.max(1e-12);
    let cams: Vec<[f64; 3]> = patches
        .iter()
        .map(|p| std::array::from_fn(|c| p.rgb[c] * wb[c] * exposure))
        .collect();
    let used: Vec<usize> = (0..24).filter(|&i| !patches[i].clipped).collect();
    let clipped = 24 - used.len();
    if clipped > 0 {
        warnings.push(format!(
            "{name}: {clipped} patch(es) clip and were left out of the fit"
        ));
    }
    if used.len() < 12 {
        return Err(format!(
            "only {} patches are unclipped: expose the chart darker",
            used.len()
        ));
    }
    // Start: least squares in linear sRGB.
    let targets: Vec<[f64; 3]> = refs.iter().map(|l| lab_d50_to_linear_srgb(*l)).collect();
    let x0 = least_squares_start(&cams, &targets, &used);
    let mean_de = |m: &M3| -> f64 {
        used.iter()
            .map(|&i| ciede2000(linear_srgb_to_lab_d50(apply(m, cams[i])), refs[i]))
            .sum::<f64>()
            / used.len() as f64
    };
    let obj = |x: &[f64; 6]| mean_de(&from_free(x));
    let mut x = nelder_mead(&obj, x0, 0.05, 3000);
    x = nelder_mead(&obj, x, 0.01, 3000);
    let ccm = from_free(&x);
    let base: M3 = base_ccm.map(|r| r.map(f64::from));
    let mut out = Vec::with_capacity(24);
    let (mut before, mut after) = (DeStats::default(), DeStats::default());
    for i in 0..24 {
        let bl = linear_srgb_to_lab_d50(apply(&base, cams[i]));
        let al = linear_srgb_to_lab_d50(apply(&ccm, cams[i]));
        let (db, da) = (ciede2000(bl, refs[i]), ciede2000(al, refs[i]));
        if !patches[i].clipped {
            before.mean += db / used.len() as f64;
            after.mean += da / used.len() as f64;
            before.max = before.max.max(db);
            after.max = after.max.max(da);
        }
        out.push(PatchFit {
            name: COLORCHECKER_24[i].0,
            camera: patches[i].rgb,
            reference_lab: refs[i],
            before_lab: bl,
            after_lab: al,
            de_before: db,
            de_after: da,
            clipped: patches[i].clipped,
        });
    }
    if after.max > 6.0 {
        warnings.push(format!(
            "{name}: a patch is off by dE2000 {:.1} after the fit: check the chart was found right (the overlay) and is evenly lit",
            after.max
        ));
    }
    Ok(ChartFit {
        name: name.to_string(),
        ct,
        found,
        patches: out,
        wb_gains: wb,
        grey_rb: [r / g, b / g],
        exposure,
        ccm,
        before,
        after,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_squares_start_recovers_a_matrix_that_fits_exactly() {
        // Rows summing to 1 (white stays white); targets made with it from
        // 24 camera colours: the start is that matrix, whatever the optimiser
        // would make of a worse one.
        let m = [[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.1, -0.5, 1.4]];
        let cams: Vec<[f64; 3]> = (0..24)
            .map(|i| {
                let f = i as f64;
                [
                    0.1 + 0.03 * f,
                    0.2 + 0.017 * (f * 1.3).sin().abs(),
                    0.05 + 0.02 * (24.0 - f),
                ]
            })
            .collect();
        let targets: Vec<[f64; 3]> = cams
            .iter()
            .map(|c| std::array::from_fn(|r| (0..3).map(|k| m[r][k] * c[k]).sum()))
            .collect();
        // Every patch but the 3rd (left out: clipped).
        let used: Vec<usize> = (0..24).filter(|&i| i != 2).collect();
        let x = least_squares_start(&cams, &targets, &used);
        let got = from_free(&x);
        for r in 0..3 {
            for k in 0..3 {
                assert!((got[r][k] - m[r][k]).abs() < 1e-9, "{got:?}");
            }
        }
        // Colours all grey: nothing to fit, the start stays 0.
        let grey: Vec<[f64; 3]> = (0..24).map(|i| [i as f64 * 0.01; 3]).collect();
        assert_eq!(least_squares_start(&grey, &grey, &used), [0.0; 6]);
    }
}

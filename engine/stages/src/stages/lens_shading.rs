//! Lens shading: a gain grid per CFA site, bilinearly interpolated. Grid
//! point (i, j) sits at pixel (i * (W-1)/(gw-1), j * (H-1)/(gh-1)), so the
//! corners of the grid are the corners of the frame.

use crate::types::BayerOrder;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LensShadingParams {
    pub enabled: bool,
    pub grid_width: usize,
    pub grid_height: usize,
    /// Gains per site `[R, Gr, Gb, B]`, each `grid_width * grid_height` values, row major.
    pub gains: [Vec<f32>; 4],
}

impl Default for LensShadingParams {
    fn default() -> Self {
        LensShadingParams {
            enabled: true,
            grid_width: 2,
            grid_height: 2,
            gains: std::array::from_fn(|_| vec![1.0; 4]),
        }
    }
}

impl LensShadingParams {
    /// The grid's size (2x2 to 64x64 points) and its gains (at most 16: four
    /// stops of fall-off, more than any lens a tuning meets).
    pub const FIELDS: &'static [super::fields::Field] = &[
        super::fields::Field::closed("grid_width", 2.0, 64.0),
        super::fields::Field::closed("grid_height", 2.0, 64.0),
        super::fields::Field::closed("gains", 0.0, 16.0).slider(0.5, 4.0),
    ];

    /// A radial grid: gain `1 + strength * r^2` with r = 1 at the corners.
    pub fn radial(grid_width: usize, grid_height: usize, strength: [f32; 4]) -> Self {
        let gains = std::array::from_fn(|c| {
            let mut v = Vec::with_capacity(grid_width * grid_height);
            for j in 0..grid_height {
                for i in 0..grid_width {
                    let dx = (i as f32 / (grid_width - 1) as f32) * 2.0 - 1.0;
                    let dy = (j as f32 / (grid_height - 1) as f32) * 2.0 - 1.0;
                    v.push(1.0 + strength[c] * (dx * dx + dy * dy) / 2.0);
                }
            }
            v
        });
        LensShadingParams {
            enabled: true,
            grid_width,
            grid_height,
            gains,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if !Self::FIELDS[0].admits(self.grid_width as f64)
            || !Self::FIELDS[1].admits(self.grid_height as f64)
        {
            return Err(format!(
                "grid must be 2x2 to 64x64, got {}x{}",
                self.grid_width, self.grid_height
            ));
        }
        for (c, g) in self.gains.iter().enumerate() {
            if g.len() != self.grid_width * self.grid_height {
                return Err(format!(
                    "gains[{c}] has {} values, a {}x{} grid needs {}",
                    g.len(),
                    self.grid_width,
                    self.grid_height,
                    self.grid_width * self.grid_height
                ));
            }
            if let Some(v) = g.iter().find(|v| !Self::FIELDS[2].admits(**v as f64)) {
                return Err(format!(
                    "gains[{c}] holds {v}; gains must be within {}",
                    Self::FIELDS[2].interval()
                ));
            }
        }
        Ok(())
    }

    /// Gain of site `c` ([R, Gr, Gb, B] index) at pixel (x, y) of a `w`x`h` frame.
    #[inline]
    pub fn gain_at(&self, c: usize, x: usize, y: usize, w: usize, h: usize) -> f32 {
        let fx = x as f32 * (self.grid_width - 1) as f32 / (w - 1).max(1) as f32;
        let fy = y as f32 * (self.grid_height - 1) as f32 / (h - 1).max(1) as f32;
        let x0 = (fx as usize).min(self.grid_width - 2);
        let y0 = (fy as usize).min(self.grid_height - 2);
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let g = &self.gains[c];
        let gw = self.grid_width;
        // Vertical first, then horizontal: the fused path computes the same way.
        let left = g[y0 * gw + x0] * (1.0 - ay) + g[(y0 + 1) * gw + x0] * ay;
        let right = g[y0 * gw + x0 + 1] * (1.0 - ay) + g[(y0 + 1) * gw + x0 + 1] * ay;
        left * (1.0 - ax) + right * ax
    }

    /// Grid row `y` interpolated vertically: `out[c][i]` for grid column i.
    pub fn column_gains(&self, y: usize, h: usize, out: &mut [Vec<f32>; 4]) {
        let fy = y as f32 * (self.grid_height - 1) as f32 / (h - 1).max(1) as f32;
        let y0 = (fy as usize).min(self.grid_height - 2);
        let ay = fy - y0 as f32;
        let gw = self.grid_width;
        for (c, o) in out.iter_mut().enumerate() {
            let g = &self.gains[c];
            o.clear();
            o.extend((0..gw).map(|i| g[y0 * gw + i] * (1.0 - ay) + g[(y0 + 1) * gw + i] * ay));
        }
    }

    /// Grid cell and weight of column `x`: `(x0, ax)`.
    #[inline]
    pub fn x_weight(&self, x: usize, w: usize) -> (usize, f32) {
        let fx = x as f32 * (self.grid_width - 1) as f32 / (w - 1).max(1) as f32;
        let x0 = (fx as usize).min(self.grid_width - 2);
        (x0, fx - x0 as f32)
    }
}

/// Apply in place to a 16-bit mosaic (about the pedestal: black stays put).
pub fn apply(
    p: &LensShadingParams,
    order: BayerOrder,
    width: usize,
    height: usize,
    data: &mut [u16],
) {
    if !p.enabled {
        return;
    }
    for y in 0..height {
        for x in 0..width {
            let c = order.color_at(x, y).index();
            let v = &mut data[y * width + x];
            *v = super::gain_about_pedestal(*v, p.gain_at(c, x, y, width, height));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_take_grid_values_and_centre_interpolates() {
        let mut p = LensShadingParams::default();
        p.gains[0] = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(p.gain_at(0, 0, 0, 5, 5), 1.0);
        assert_eq!(p.gain_at(0, 4, 0, 5, 5), 2.0);
        assert_eq!(p.gain_at(0, 0, 4, 5, 5), 3.0);
        assert_eq!(p.gain_at(0, 4, 4, 5, 5), 4.0);
        assert_eq!(p.gain_at(0, 2, 2, 5, 5), 2.5);
        assert_eq!(p.gain_at(0, 2, 0, 5, 5), 1.5);
    }

    #[test]
    fn applies_per_site_and_clamps() {
        let mut p = LensShadingParams::default();
        p.gains = [vec![2.0; 4], vec![1.0; 4], vec![1.0; 4], vec![0.5; 4]];
        let p0 = crate::stages::PEDESTAL;
        let mut d = vec![p0 + 1000, p0 + 1000, p0 - 1000, p0 + 40000];
        apply(&p, BayerOrder::Rggb, 2, 2, &mut d);
        assert_eq!(d, vec![p0 + 2000, p0 + 1000, p0 - 1000, p0 + 20000]);
        let mut sat = vec![40000u16, 0, 0, 0];
        apply(&p, BayerOrder::Rggb, 2, 2, &mut sat);
        assert_eq!(sat[0], 65535);
    }

    #[test]
    fn check_names_the_problem() {
        let mut p = LensShadingParams::default();
        p.gains[2] = vec![1.0; 3];
        assert!(p.check().unwrap_err().contains("gains[2]"));
        assert!(LensShadingParams::radial(17, 13, [0.5; 4]).check().is_ok());
    }
}

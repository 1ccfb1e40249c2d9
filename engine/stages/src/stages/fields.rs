//! What a parameter field accepts, said once: the stage and algorithm
//! parameter structs list their fields' ranges and choices here, their
//! `check()`/`init()` validate with these, and a tuning UI draws its sliders
//! and choice boxes from the same lists ([`field`], by the field's full path
//! in the tuning file).

/// The values a field accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Domain {
    /// A number in `min..=max`, either end open (excluded) where said.
    /// `slider` is the range a UI offers when an end is unbounded.
    Range {
        min: f64,
        max: f64,
        min_open: bool,
        max_open: bool,
        /// Logarithmic slider.
        log: bool,
        slider: Option<(f64, f64)>,
    },
    /// One of these strings.
    Choice(&'static [&'static str]),
}

/// One field: its name in its block, what it accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub domain: Domain,
}

impl Field {
    /// A number in `[min, max]`.
    pub const fn closed(name: &'static str, min: f64, max: f64) -> Field {
        Field {
            name,
            domain: Domain::Range {
                min,
                max,
                min_open: false,
                max_open: false,
                log: false,
                slider: None,
            },
        }
    }

    pub const fn choice(name: &'static str, of: &'static [&'static str]) -> Field {
        Field {
            name,
            domain: Domain::Choice(of),
        }
    }

    /// The lower end excluded.
    pub const fn open_min(mut self) -> Field {
        if let Domain::Range { min_open, .. } = &mut self.domain {
            *min_open = true;
        }
        self
    }

    /// The upper end excluded.
    pub const fn open_max(mut self) -> Field {
        if let Domain::Range { max_open, .. } = &mut self.domain {
            *max_open = true;
        }
        self
    }

    /// Drawn on a logarithmic slider.
    pub const fn log(mut self) -> Field {
        if let Domain::Range { log, .. } = &mut self.domain {
            *log = true;
        }
        self
    }

    /// The slider's range where the domain has no finite end.
    pub const fn slider(mut self, lo: f64, hi: f64) -> Field {
        if let Domain::Range { slider, .. } = &mut self.domain {
            *slider = Some((lo, hi));
        }
        self
    }

    /// The interval as a reader writes it: `(0, 8]`, `0..=1`.
    pub fn interval(&self) -> String {
        match self.domain {
            Domain::Range {
                min,
                max,
                min_open,
                max_open,
                ..
            } => {
                if max.is_infinite() {
                    return format!("{} {min}", if min_open { ">" } else { ">=" });
                }
                if !min_open && !max_open {
                    return format!("{min}..={max}");
                }
                format!(
                    "{}{min}, {max}{}",
                    if min_open { "(" } else { "[" },
                    if max_open { ")" } else { "]" }
                )
            }
            Domain::Choice(of) => of.join(", "),
        }
    }

    /// Whether `v` is in the domain (a choice is never a number).
    pub fn admits(&self, v: f64) -> bool {
        match self.domain {
            Domain::Range {
                min,
                max,
                min_open,
                max_open,
                ..
            } => {
                v.is_finite()
                    && if min_open { v > min } else { v >= min }
                    && if max_open { v < max } else { v <= max }
            }
            Domain::Choice(_) => false,
        }
    }

    /// `Ok`, or "`v` is outside `interval`".
    pub fn check(&self, v: f64) -> Result<(), String> {
        if self.admits(v) {
            Ok(())
        } else {
            let i = self.interval();
            Err(if i.starts_with('>') {
                format!("{v} is not {i}")
            } else {
                format!("{v} is outside {i}")
            })
        }
    }

    /// The range a slider offers, and whether it is logarithmic.
    pub fn slider_range(&self) -> Option<(f64, f64, bool)> {
        match self.domain {
            Domain::Range {
                min,
                max,
                log,
                slider,
                ..
            } => match slider {
                Some((lo, hi)) => Some((lo, hi, log)),
                None if min.is_finite() && max.is_finite() => Some((min, max, log)),
                None => None,
            },
            Domain::Choice(_) => None,
        }
    }
}

/// Every number in `v` (a number, or arrays of numbers at any depth, as a
/// grid or a matrix is written) checked against `f`; a choice's string
/// against its list. Other shapes are the types' business, not the ranges'.
pub fn check_value(f: &Field, v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match (v, f.domain) {
        (Value::Number(n), Domain::Range { .. }) => f.check(n.as_f64().unwrap_or(f64::NAN)),
        (Value::Array(a), _) => a.iter().try_for_each(|x| check_value(f, x)),
        (Value::String(s), Domain::Choice(of)) if !of.contains(&s.as_str()) => {
            Err(format!("`{s}` is not one of {}", of.join(", ")))
        }
        _ => Ok(()),
    }
}

/// Every described field of a block (its JSON value, as the tuning file
/// spells it) checked against its domain: the first field out of range,
/// by name, and why.
pub fn check_block(block: &serde_json::Value, fields: &[Field]) -> Result<(), (String, String)> {
    for f in fields {
        if let Some(v) = block.get(f.name) {
            check_value(f, v).map_err(|m| (f.name.to_string(), m))?;
        }
    }
    Ok(())
}

/// Every described block, by its path in the tuning file.
pub fn blocks() -> [(&'static str, &'static [Field]); 11] {
    [
        (
            "stages.black_level",
            super::black_level::BlackLevelParams::FIELDS,
        ),
        (
            "stages.lens_shading",
            super::lens_shading::LensShadingParams::FIELDS,
        ),
        (
            "stages.white_balance",
            super::white_balance::WhiteBalanceParams::FIELDS,
        ),
        ("stages.tone", super::tone::ToneParams::FIELDS),
        ("stages.tone.gamma", super::tone::Gamma::FIELDS),
        ("stages.stats", super::stats::StatsParams::FIELDS),
        (
            "stages.defect_pixel",
            super::defect_pixel::DefectPixelParams::FIELDS,
        ),
        ("stages.ccm", super::ccm::CcmParams::FIELDS),
        ("stages.demosaic", super::demosaic::DemosaicParams::FIELDS),
        (
            "stages.highlights",
            super::highlights::HighlightsParams::FIELDS,
        ),
        ("stages.yuv", super::yuv::YuvParams::FIELDS),
    ]
}

/// The field at `path` (`stages.tone.contrast`), among `blocks` (the
/// stages' and, from the algorithms, theirs).
pub fn field_in<'a>(blocks: &[(&str, &'a [Field])], path: &str) -> Option<&'a Field> {
    let (block, name) = path.rsplit_once('.')?;
    blocks
        .iter()
        .filter(|(b, _)| *b == block)
        .flat_map(|(_, fields)| fields.iter())
        .find(|f| f.name == name)
}

/// A stage field by its path in the tuning file.
pub fn field(path: &str) -> Option<&'static Field> {
    field_in(&blocks(), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_says_what_it_admits_and_why_not() {
        let f = Field::closed("contrast", 0.0, 8.0).open_min().log();
        assert!(f.admits(8.0) && f.admits(0.1));
        assert!(!f.admits(0.0) && !f.admits(8.5) && !f.admits(f64::NAN));
        assert_eq!(f.check(-1.0).unwrap_err(), "-1 is outside (0, 8]");
        assert_eq!(f.slider_range(), Some((0.0, 8.0, true)));
        let g = Field::closed("value", 0.0, f64::INFINITY)
            .open_min()
            .slider(0.5, 4.0);
        assert_eq!(g.slider_range(), Some((0.5, 4.0, false)));
        assert_eq!(Field::closed("speed", 0.0, 1.0).interval(), "0..=1");
        assert_eq!(g.check(0.0).unwrap_err(), "0 is not > 0");
        // Paths tell the CCM's matrix from the YUV's.
        assert!(matches!(
            field("stages.yuv.matrix").unwrap().domain,
            Domain::Choice(_)
        ));
        assert!(matches!(
            field("stages.ccm.matrix").unwrap().domain,
            Domain::Range { .. }
        ));
        assert!(field("stages.tone.nope").is_none());
    }
}

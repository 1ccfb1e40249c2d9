//! An import's context ([`Cx`]): where its errors point, what it mapped
//! and what it left, and the readers of libcamera's values (numbers,
//! tables, piecewise-linear curves, matrices) that name the field they
//! read when it is wrong.

use super::*;

pub(crate) type Obj = Map<String, Value>;
pub(crate) static EMPTY: LazyLock<Obj> = LazyLock::new(Map::new);

/// The one key of an algorithm's entry and its parameters.
pub(crate) fn single(a: &Value) -> Option<(&str, &Value)> {
    let o = a.as_object().filter(|o| o.len() == 1)?;
    o.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// `p[key]`, or null.
pub(crate) fn get<'v>(p: &'v Obj, key: &str) -> &'v Value {
    p.get(key).unwrap_or(&Value::Null)
}

/// An import's context: where errors point and what it said.
pub(crate) struct Cx<'a> {
    pub origin: &'a str,
    pub bits: u8,
    pub mapped: Vec<String>,
    pub unmapped: Vec<String>,
}

type Res<T> = Result<T, TuningError>;

impl Cx<'_> {
    pub fn err(&self, field: impl Into<String>, message: impl Into<String>) -> TuningError {
        let (origin, field, message) = (self.origin.into(), field.into(), message.into());
        TuningError::Field {
            origin,
            field,
            message,
        }
    }
    pub fn invalid(&self, message: impl Into<String>) -> TuningError {
        let (origin, message) = (self.origin.into(), message.into());
        TuningError::Invalid { origin, message }
    }
    pub fn num(&self, v: &Value, field: &str) -> Res<f64> {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.err(field, format!("expected a number, got {v}")))
    }
    pub fn list<'v>(&self, v: &'v Value, field: &str) -> Res<&'v [Value]> {
        let e = || self.err(field, format!("expected a list, got {v}"));
        v.as_array().map(|a| a.as_slice()).ok_or_else(e)
    }
    pub fn nums(&self, v: &Value, field: &str) -> Res<Vec<f64>> {
        let list = self.list(v, field)?.iter().enumerate();
        list.map(|(i, x)| self.num(x, &format!("{field}[{i}]")))
            .collect()
    }
    /// Exactly `n` numbers (`what` says why).
    pub fn nums_n(&self, v: &Value, field: &str, n: usize, what: &str) -> Res<Vec<f64>> {
        let x = self.nums(v, field)?;
        if x.len() != n {
            let m = format!("has {} numbers, {what} needs {n}", x.len());
            return Err(self.err(field, m));
        }
        Ok(x)
    }
    /// A map of parameters; nothing (`- Agc:`) is an empty one.
    pub fn obj<'v>(&self, v: &'v Value, field: &str) -> Res<&'v Obj> {
        match v {
            Value::Null => Ok(&EMPTY),
            Value::Object(m) => Ok(m),
            _ => Err(self.err(field, format!("expected a map of parameters, got {v}"))),
        }
    }
    pub fn opt_num(&self, p: &Obj, key: &str, block: &str) -> Res<Option<f64>> {
        let v = p.get(key).filter(|v| !v.is_null());
        v.map(|v| self.num(v, &format!("{block}.{key}")))
            .transpose()
    }
    pub fn req(&self, p: &Obj, key: &str, block: &str) -> Res<f64> {
        let missing = || self.err(format!("{block}.{key}"), "missing");
        self.opt_num(p, key, block)?.ok_or_else(missing)
    }
    /// A black level in 16-bit units, in sensor units (rounded).
    pub fn from16(&self, v: f64, field: &str) -> Res<u16> {
        if !(0.0..=65535.0).contains(&v) {
            let m = format!("black level {v} is outside 0..=65535 (16-bit units)");
            return Err(self.err(field, m));
        }
        Ok((v / f64::from(1u32 << (16 - self.bits))).round() as u16)
    }
    pub fn took(&mut self, line: String) {
        self.mapped.push(line);
    }
    pub fn no(&mut self, line: String) {
        self.unmapped.push(line);
    }
    /// One line for the keys of `block` not in `taken` (space-separated).
    pub fn leftover(&mut self, block: &str, p: &Obj, taken: &str, why: &str) {
        let rest: Vec<&str> = p
            .keys()
            .map(|k| k.as_str())
            .filter(|k| !taken.split(' ').any(|t| t == *k))
            .collect();
        if !rest.is_empty() {
            let rest = rest.join(", ");
            self.unmapped
                .push(format!("{block}: {rest} not mapped ({why})"));
        }
    }

    /// The CCMs of `block`'s `ccms` ([{ct, ccm: 9 row-major}]) onto the
    /// tuning; each entry's map is handed to `each` (rkisp1's offsets).
    pub fn set_ccms(
        &mut self,
        t: &mut Tuning,
        block: &str,
        p: &Obj,
        mut each: impl FnMut(&Self, &Obj, &str, f64) -> Res<()>,
    ) -> Res<()> {
        let mut ccms = Vec::new();
        let items = self.list(get(p, "ccms"), &format!("{block}.ccms"))?;
        for (i, c) in items.iter().enumerate() {
            let f = format!("{block}.ccms[{i}]");
            let c = self.obj(c, &f)?;
            let ct = self.req(c, "ct", &f)?;
            let m = self.nums_n(get(c, "ccm"), &format!("{f}.ccm"), 9, "a 3x3 matrix")?;
            if !(ct > 0.0 && ct <= 100_000.0) {
                return Err(self.err(f + ".ct", format!("{ct} K is not in (0, 100000]")));
            }
            if let Some(v) = m.iter().find(|v| !(-16.0..=16.0).contains(*v)) {
                return Err(self.err(f + ".ccm", format!("coefficient {v} is outside -16..=16")));
            }
            each(self, c, &f, ct)?;
            ccms.push((ct, std::array::from_fn::<f32, 9, _>(|k| m[k] as f32)));
        }
        ccms.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(w) = ccms.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(self.err(format!("{block}.ccms"), format!("two at {} K", w[0].0)));
        }
        let (Some(first), Some(last)) = (ccms.first(), ccms.last()) else {
            return Err(self.err(format!("{block}.ccms"), "holds no matrix"));
        };
        let m3 = |m: &[f32; 9]| std::array::from_fn(|r| std::array::from_fn(|c| m[r * 3 + c]));
        let n = nearest(ccms.iter().map(|c| c.0), REFERENCE_CT);
        self.took(format!(
            "{block}.ccms -> stages.ccm.by_ct ({} matrices, {}..{} K; matrix = the one at {} K)",
            ccms.len(),
            first.0,
            last.0,
            ccms[n].0
        ));
        let ccm = &mut t.stages.ccm;
        (ccm.enabled, ccm.matrix) = (true, m3(&ccms[n].1));
        let at = |(ct, m): &(f64, [f32; 9])| CcmAtCt {
            ct: *ct as f32,
            matrix: m3(m),
        };
        ccm.by_ct = ccms.iter().map(at).collect();
        Ok(())
    }

    /// The file's AWB: `curve` (points [ct, R/G, B/G], transverse +/-) into
    /// the `awb.ct_curve` block, the running AWB when `active` (otherwise
    /// grey world runs and the curve is kept, disabled); `enabled`: any runs.
    pub fn set_awb(
        &mut self,
        t: &mut Tuning,
        block: &str,
        curve: Option<(Vec<[f32; 3]>, f32, f32)>,
        active: bool,
        enabled: bool,
    ) -> Res<()> {
        let (ct_name, grey) = (CtCurveAwb::NAME, algorithms::awb::GreyWorldAwb::NAME);
        let mut run = None;
        if let Some((points, pos, neg)) = curve.filter(|c| c.0.len() >= 2) {
            let n = points.len();
            let mut p = block_params::<CtCurveParams>(t, ct_name);
            (p.ct_curve, p.transverse_pos, p.transverse_neg) = (points, pos.min(1.0), neg.min(1.0));
            let mut a = CtCurveAwb::default();
            let bad =
                |e: algorithms::AlgoInitError| self.err(block, format!("CT curve: {}", e.message));
            a.init(&to_value(&p)).map_err(bad)?;
            let at = t.algorithms.iter().position(|b| b.name == grey);
            put_block(t, ct_name, to_value(&p), at);
            let kept = if active {
                ""
            } else {
                " (kept disabled: libcamera runs grey world)"
            };
            self.took(format!(
                "{block} CT curve -> algorithms {ct_name}.ct_curve ({n} points, transverse +{pos}/-{neg}){kept}"
            ));
            run = active.then_some(ct_name);
        }
        let run = enabled.then_some(run.unwrap_or(grey));
        if run == Some(grey) && !t.algorithms.iter().any(|b| b.name == grey) {
            put_block(t, grey, serde_json::json!({}), None);
        }
        let awbs = t
            .algorithms
            .iter_mut()
            .filter(|b| b.name.starts_with("awb."));
        for b in awbs {
            b.enabled = Some(b.name.as_str()) == run;
        }
        let how = run.map_or("off: every awb.* block disabled".into(), |r| {
            format!("{r} enabled, other awb.* blocks disabled")
        });
        self.took(format!("{block} -> AWB: {how}"));
        Ok(())
    }

    /// The AE target (linear mean luminance, fraction of full scale).
    pub fn set_ae(
        &mut self,
        t: &mut Tuning,
        field: &str,
        target: f64,
        how: &str,
        on: bool,
    ) -> Res<()> {
        if !(target > 0.0 && target < 1.0) {
            return Err(self.err(field, format!("target {target} is not in (0, 1)")));
        }
        let name = algorithms::ae::MeanLuminanceAe::NAME;
        let mut p = block_params::<MeanLuminanceParams>(t, name);
        p.target = target as f32;
        put_block(t, name, to_value(&p), None);
        t.algorithms
            .iter_mut()
            .filter(|b| b.name == name)
            .for_each(|b| b.enabled = on);
        self.took(format!(
            "{field} -> algorithms {name}.target = {target} ({how})"
        ));
        Ok(())
    }
}

//! The FusionManager's lifecycle, and the merges' quality on synthetic
//! bursts with known ground truth and the synthetic sensor's noise model
//! (shot + read noise).

use super::*;
use isp_core::allocator::HeapAllocator;
use isp_core::resource_manager::PoolConfig;
use isp_core::types::{BayerOrder, Packing};

fn fmt(w: u32, h: u32) -> RawFormat {
    RawFormat::new(w, h, 10, BayerOrder::Rggb, Packing::Plain)
}

fn rm() -> ResourceManager {
    ResourceManager::new(Box::new(HeapAllocator), PoolConfig::default())
}

fn meta(seq: u64, dropped: u64) -> FrameInfo {
    FrameInfo {
        sequence: seq,
        exposure_us: 10_000.0,
        analogue_gain: 1.0,
        dropped_before: dropped,
    }
}

#[test]
fn plans_are_checked() {
    let fm = FusionManager::new();
    assert!(
        fm.create_plan(FusionKind::Burst { frames: 8 }, fmt(640, 480))
            .is_ok()
    );
    for bad in [
        fm.create_plan(FusionKind::Burst { frames: 1 }, fmt(640, 480)),
        fm.create_plan(FusionKind::Bracket { ev: vec![0.0] }, fmt(640, 480)),
        fm.create_plan(
            FusionKind::Bracket {
                ev: vec![-2.0, f32::NAN],
            },
            fmt(640, 480),
        ),
        fm.create_plan(FusionKind::Burst { frames: 4 }, fmt(641, 480)),
    ] {
        assert!(matches!(bad, Err(FusionError::Plan(..))), "{bad:?}");
    }
    let a = fm
        .create_plan(FusionKind::Burst { frames: 2 }, fmt(64, 64))
        .unwrap();
    let b = fm
        .create_plan(FusionKind::Burst { frames: 2 }, fmt(64, 64))
        .unwrap();
    assert_ne!(a.id, b.id);
}

/// Reserve -> commit: the frames' buffers and the result's, Bayer16.
#[test]
fn a_reservation_commits_into_the_merge() {
    let rm = rm();
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(FusionKind::Burst { frames: 4 }, fmt(64, 64))
        .unwrap();
    fm.reserve_for_plan(&rm, &plan, 1_000_000_000).unwrap();
    assert_eq!(rm.stats().reserved, 5);
    // Reserved buffers are not handed to anyone else.
    let other = rm.allocate(plan.spec(), "other").unwrap();
    assert_eq!(rm.stats().reserved, 5);
    let bufs = fm.commit(&rm, &plan).unwrap();
    assert_eq!(bufs.len(), 5);
    assert!(
        bufs.iter()
            .all(|b| b.spec == plan.spec() && b.id != other.id)
    );
    assert_eq!((rm.stats().reserved, rm.stats().allocated), (0, 6));
    // A plan commits once.
    assert_eq!(
        fm.commit(&rm, &plan).unwrap_err(),
        RmError::UnknownPlan(plan.id)
    );
}

/// Cancelled (the user, or the source stopped): the buffers are free again.
#[test]
fn a_cancelled_plan_frees_its_reservation() {
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(
            FusionKind::Bracket {
                ev: vec![-2.0, 0.0, 2.0],
            },
            fmt(64, 64),
        )
        .unwrap();
    fm.reserve_for_plan(&rm, &plan, 1_000_000_000).unwrap();
    assert_eq!(rm.stats().reserved, 4);
    fm.cancel(&rm, &key, &plan).unwrap();
    assert_eq!((rm.stats().reserved, rm.stats().free), (0, 4));
    assert_eq!(
        fm.commit(&rm, &plan).unwrap_err(),
        RmError::UnknownPlan(plan.id)
    );
    assert_eq!(
        fm.cancel(&rm, &key, &plan).unwrap_err(),
        RmError::UnknownPlan(plan.id)
    );
}

/// Frames that never arrive: the reservation expires, commit is refused,
/// and the sweep frees it.
#[test]
fn an_unused_reservation_expires() {
    let rm = rm();
    let key = rm.take_lifecycle().unwrap();
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(FusionKind::Burst { frames: 2 }, fmt(64, 64))
        .unwrap();
    fm.reserve_for_plan(&rm, &plan, 0).unwrap();
    assert_eq!(
        fm.commit(&rm, &plan).unwrap_err(),
        RmError::ReservationExpired(plan.id)
    );
    assert_eq!(rm.stats().reserved, 3);
    assert_eq!(
        rm.expire_reservations(&key, isp_core::clock::now_ns()),
        vec![plan.id]
    );
    assert_eq!(rm.stats().reserved, 0);
}

/// A merge that fails (frames of the wrong size) leaves the committed
/// buffers for the caller to release: nothing is held by the manager.
#[test]
fn a_failing_merge_spec_names_the_frame() {
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(FusionKind::Burst { frames: 2 }, fmt(64, 64))
        .unwrap();
    let sel = Selection {
        chosen: vec![0, 1],
        reference: 0,
        rejected: vec![],
    };
    let good = vec![100u16; 64 * 64];
    let short = vec![100u16; 10];
    let e = fm
        .build_merge_spec(
            &plan,
            &sel,
            &[&good, &short],
            &[meta(0, 0), meta(1, 0)],
            64.0,
            NOISE,
            &|| {},
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("frame 1 holds 10 samples"), "{e}");
}

#[test]
fn selection_leaves_out_gaps_and_blur_and_picks_a_sharp_early_reference() {
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(FusionKind::Burst { frames: 6 }, fmt(64, 64))
        .unwrap();
    let c = |seq, dropped, focus| Candidate {
        meta: meta(seq, dropped),
        focus,
    };
    let cands = [
        c(10, 0, 0.050),
        c(11, 0, 0.060),
        c(12, 0, 0.020), // blurred
        c(15, 2, 0.070), // after a gap
        c(16, 0, 0.055),
        c(17, 0, 0.070), // sharpest, but late
    ];
    let s = fm.select_frames(&plan, &cands).unwrap();
    assert_eq!(s.chosen, [0, 1, 4, 5]);
    assert_eq!(s.reference, 1, "the sharpest of the first three kept");
    assert_eq!(s.rejected.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
    assert!(s.rejected[0].1.contains("blurred") && s.rejected[1].1.contains("lost"));
    assert!(
        fm.select_frames(&plan, &cands[..5]).is_err(),
        "a frame short"
    );
    // A bracket keeps every exposure; the reference is the one at 0 EV.
    let plan = fm
        .create_plan(
            FusionKind::Bracket {
                ev: vec![-2.0, 0.0, 2.0],
            },
            fmt(64, 64),
        )
        .unwrap();
    let s = fm.select_frames(&plan, &cands[..3]).unwrap();
    assert_eq!((s.chosen.as_slice(), s.reference), (&[0, 1, 2][..], 1));
}

// ------------------------------------------------------------ quality

/// The synthetic sensor's noise at unity gain in 10-bit DN: 959 DN of
/// range over a 12000 e- full well, 1.2 DN of read noise.
const NOISE: NoiseModel = NoiseModel {
    shot: 959.0 / 12000.0,
    read: 1.44,
};
const BLACK: f32 = 64.0;
const WHITE: f32 = 1023.0;

/// Deterministic Gaussian noise (splitmix64 + Box-Muller).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f32 {
        let (u, v) = (self.next().max(1e-12), self.next());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// A scene's signal above black at raw pixel `(x, y)` (its CFA channel):
/// smooth shading, fine texture and hard edges.
fn scene(x: f32, y: f32, c: usize) -> f32 {
    let tint = [0.8, 1.0, 0.7][c];
    let edge = if ((x / 40.0).floor() + (y / 40.0).floor()) as i64 % 2 == 0 {
        1.0
    } else {
        0.6
    };
    let tex = 1.0 + 0.15 * (x * 0.21).sin() * (y * 0.17).cos() + 0.1 * ((x + y) * 0.05).sin();
    200.0 * tint * edge * tex + 40.0 * (x / 300.0)
}

fn cfa(x: usize, y: usize) -> usize {
    BayerOrder::Rggb.color_at(x, y).rgb()
}

/// A frame of `w`x`h`: the scene moved by `(sx, sy)` raw pixels, a square
/// object at `obj` (top-left, raw pixels; 48 px) of signal `obj_level`, at
/// gain `gain` and exposure `ratio`, with noise. Returns the noisy mosaic
/// and the noiseless signal (above black, unclipped).
#[allow(clippy::too_many_arguments)]
fn frame(
    w: usize,
    h: usize,
    shift: (i32, i32),
    obj: Option<(usize, usize)>,
    obj_level: f32,
    gain: f32,
    ratio: f32,
    level: f32,
    seed: u64,
) -> (Vec<u16>, Vec<f32>) {
    let mut rng = Rng(seed);
    let mut noisy = vec![0u16; w * h];
    let mut truth = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let c = cfa(x, y);
            let mut s = scene(x as f32 - shift.0 as f32, y as f32 - shift.1 as f32, c) * level;
            if let Some((ox, oy)) = obj
                && (ox..ox + 48).contains(&x)
                && (oy..oy + 48).contains(&y)
            {
                s = obj_level;
            }
            let s = s * ratio;
            truth[y * w + x] = s;
            let var = NOISE.shot * gain * s + NOISE.read * gain * gain;
            let v = BLACK + s + var.sqrt() * rng.gauss();
            noisy[y * w + x] = (v + 0.5).clamp(0.0, WHITE) as u16;
        }
    }
    (noisy, truth)
}

/// PSNR of `x` against `truth` (signal above black) over the interior.
fn psnr(x: &[u16], truth: &[f32], w: usize, h: usize) -> f64 {
    let m = 48;
    let (mut se, mut n) = (0.0f64, 0u64);
    for y in m..h - m {
        for x0 in m..w - m {
            let d = (x[y * w + x0] as f64 - BLACK as f64) - truth[y * w + x0] as f64;
            se += d * d;
            n += 1;
        }
    }
    let peak = (WHITE - BLACK) as f64;
    10.0 * (peak * peak / (se / n as f64)).log10()
}

fn burst_merge(
    frames: &[(Vec<u16>, Vec<f32>)],
    w: usize,
    h: usize,
    reference: usize,
    gain: f32,
) -> (MergeSpec, MergeOutput) {
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(
            FusionKind::Burst {
                frames: frames.len(),
            },
            fmt(w as u32, h as u32),
        )
        .unwrap();
    let sel = Selection {
        chosen: (0..frames.len()).collect(),
        reference,
        rejected: vec![],
    };
    let mosaics: Vec<&[u16]> = frames.iter().map(|f| f.0.as_slice()).collect();
    let metas: Vec<FrameInfo> = (0..frames.len())
        .map(|i| FrameInfo {
            analogue_gain: gain,
            ..meta(i as u64, 0)
        })
        .collect();
    let spec = fm
        .build_merge_spec(&plan, &sel, &mosaics, &metas, BLACK, NOISE, &|| {}, None)
        .unwrap();
    let out = FusionManager::merge(&spec, &mosaics, w, h, &|| {});
    (spec, out)
}

/// Merging N frames of a static scene (a hand-held burst: each frame
/// shifted by a few pixels) gains at least 0.8 x 10 log10(N) dB of PSNR
/// over the reference frame alone, for N = 4 and 8.
#[test]
fn a_static_burst_gains_the_psnr_of_averaging() {
    let (w, h) = (384, 256);
    let gain = 4.0;
    let shifts = [
        (0, 0),
        (4, -2),
        (-6, 2),
        (2, 6),
        (-2, -4),
        (8, 0),
        (0, -8),
        (-4, 4),
    ];
    let frames: Vec<_> = shifts
        .iter()
        .enumerate()
        .map(|(i, &s)| frame(w, h, s, None, 0.0, gain, 1.0, 1.0, 1000 + i as u64))
        .collect();
    let truth = &frames[0].1;
    let single = psnr(&frames[0].0, truth, w, h);
    for n in [4usize, 8] {
        let (spec, out) = burst_merge(&frames[..n], w, h, 0, gain);
        // The alignment found each frame's shift (in grey pixels, half the
        // raw shift) in nearly every tile.
        for (i, a) in spec.alignments.iter().enumerate().skip(1) {
            let want = (-shifts[i].0 / 2, -shifts[i].1 / 2);
            let want = (-want.0, -want.1);
            let hits = a.offsets.iter().filter(|&&o| o == want).count();
            assert!(
                hits * 10 >= a.offsets.len() * 9,
                "frame {i}: {hits} of {}",
                a.offsets.len()
            );
        }
        let merged = psnr(&out.mosaic, truth, w, h);
        let gain_db = merged - single;
        let want = 0.8 * 10.0 * (n as f64).log10();
        println!(
            "N={n}: single {single:.2} dB, merged {merged:.2} dB, gain {gain_db:.2} dB (at least {want:.2}); weights {:?}",
            out.stats.mean_weight
        );
        assert!(
            gain_db >= want,
            "N={n}: gain {gain_db:.2} dB < {want:.2} dB"
        );
    }
}

/// An object that moves through the burst does not ghost: where it was in
/// other frames but not in the reference, the merge keeps the background
/// (bias under 2% of the object's contrast; a plain average's is
/// ~(N-1)/N of the frames it covers), and the static parts still gain.
#[test]
fn a_moving_object_does_not_ghost() {
    let (w, h) = (384, 256);
    let gain = 4.0;
    let n = 8;
    let pos = |i: usize| (80 + 24 * i, 100);
    let frames: Vec<_> = (0..n)
        .map(|i| {
            frame(
                w,
                h,
                (0, 0),
                Some(pos(i)),
                700.0,
                gain,
                1.0,
                1.0,
                77 + i as u64,
            )
        })
        .collect();
    let (_, out) = burst_merge(&frames, w, h, 0, gain);
    let truth = &frames[0].1;
    // The object's track outside the reference's object.
    let (r0, _) = pos(0);
    let (mut bias, mut count, mut contrast) = (0.0f64, 0u64, 0.0f64);
    for y in 100 + 4..100 + 44 {
        for x in r0 + 48 + 4..pos(n - 1).0 + 44 {
            let d = out.mosaic[y * w + x] as f64 - BLACK as f64 - truth[y * w + x] as f64;
            bias += d;
            contrast += 700.0 - truth[y * w + x] as f64;
            count += 1;
        }
    }
    let ghost = (bias / count as f64) / (contrast / count as f64);
    // The same merge without rejection, for comparison.
    let plain: f64 = {
        let mut s = 0.0f64;
        for y in 100 + 4..100 + 44 {
            for x in r0 + 48 + 4..pos(n - 1).0 + 44 {
                let mean: f64 =
                    frames.iter().map(|f| f.0[y * w + x] as f64).sum::<f64>() / n as f64;
                s += mean - BLACK as f64 - truth[y * w + x] as f64;
            }
        }
        (s / count as f64) / (contrast / count as f64)
    };
    println!(
        "ghost: {:.2}% of the contrast (a plain average: {:.1}%); weights {:?}, rejected tiles {:?}",
        ghost * 100.0,
        plain * 100.0,
        out.stats.mean_weight,
        out.stats.rejected_tiles
    );
    assert!(ghost.abs() < 0.02, "ghost {ghost}");
    assert!(
        plain > 0.05,
        "the test's object must ghost without rejection: {plain}"
    );
    let single = psnr(&frames[0].0, truth, w, h);
    assert!(psnr(&out.mosaic, truth, w, h) > single + 3.0);
}

/// A -2/0/+2 EV bracket of a scene no single frame holds: highlights that
/// clip at 0 and +2 EV, shadows lost in read noise at -2 and 0 EV. The
/// merge is within 3% in the highlights and has at most half the 0 EV
/// frame's error in the shadows; every single frame fails one of the two.
#[test]
fn a_bracket_recovers_highlights_and_shadows() {
    let (w, h) = (384, 256);
    let ev = [-2.0f32, 0.0, 2.0];
    // Left third up to 3.5x over the range at 0 EV (under it at -2 EV),
    // right third at 1.5% of it.
    let level = |x: usize| {
        if x < w / 3 {
            12.0
        } else if x >= 2 * w / 3 {
            0.012
        } else {
            0.6
        }
    };
    let frames: Vec<(Vec<u16>, Vec<f32>)> = ev
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let ratio = e.exp2();
            let mut rng = Rng(500 + i as u64);
            let mut noisy = vec![0u16; w * h];
            let mut truth = vec![0.0f32; w * h];
            for y in 0..h {
                for x in 0..w {
                    let s = scene(x as f32, y as f32, cfa(x, y)) * level(x);
                    truth[y * w + x] = s; // at 0 EV
                    let s = s * ratio;
                    let var = NOISE.shot * s + NOISE.read;
                    let v = BLACK + s + var.sqrt() * rng.gauss();
                    noisy[y * w + x] = (v + 0.5).clamp(0.0, WHITE) as u16;
                }
            }
            (noisy, truth)
        })
        .collect();
    let fm = FusionManager::new();
    let plan = fm
        .create_plan(
            FusionKind::Bracket { ev: ev.to_vec() },
            fmt(w as u32, h as u32),
        )
        .unwrap();
    let cands: Vec<Candidate> = (0..3)
        .map(|i| Candidate {
            meta: meta(i, 0),
            focus: 1.0,
        })
        .collect();
    let sel = fm.select_frames(&plan, &cands).unwrap();
    let mosaics: Vec<&[u16]> = frames.iter().map(|f| f.0.as_slice()).collect();
    let metas: Vec<FrameInfo> = ev
        .iter()
        .enumerate()
        .map(|(i, e)| FrameInfo {
            exposure_us: 10_000.0 * e.exp2(),
            ..meta(i as u64, 0)
        })
        .collect();
    let spec = fm
        .build_merge_spec(&plan, &sel, &mosaics, &metas, BLACK, NOISE, &|| {}, None)
        .unwrap();
    assert_eq!(
        spec.exposures.iter().map(|e| e.ratio).collect::<Vec<_>>(),
        [0.25, 1.0, 4.0]
    );
    let out = FusionManager::merge(&spec, &mosaics, w, h, &|| {});
    let hdr = out.hdr.as_ref().unwrap();
    let truth = &frames[1].1;
    let region = |x0: usize, x1: usize| {
        (24..h - 24).flat_map(move |y| (x0 + 24..x1 - 24).map(move |x| y * w + x))
    };
    // Relative error in the highlights, RMS error (DN at 0 EV) in the shadows.
    let high = |v: &dyn Fn(usize) -> f32| {
        let (mut s, mut n) = (0.0f64, 0.0f64);
        for i in region(0, w / 3) {
            s += ((v(i) - truth[i]) / truth[i]).abs() as f64;
            n += 1.0;
        }
        s / n
    };
    let low = |v: &dyn Fn(usize) -> f32| {
        let (mut s, mut n) = (0.0f64, 0.0f64);
        for i in region(2 * w / 3, w) {
            s += ((v(i) - truth[i]) as f64).powi(2);
            n += 1.0;
        }
        (s / n).sqrt()
    };
    let merged = (high(&|i| hdr[i]), low(&|i| hdr[i]));
    let singles: Vec<(f64, f64)> = (0..3)
        .map(|f| {
            let r = ev[f].exp2();
            let v = |i: usize| (frames[f].0[i] as f32 - BLACK) / r;
            (high(&v), low(&v))
        })
        .collect();
    println!(
        "bracket: merged highlights {:.2}% off, shadows {:.3} DN rms; singles (highlights %, shadows DN): {:?}; share {:?}",
        merged.0 * 100.0,
        merged.1,
        singles
            .iter()
            .map(|s| (s.0 * 100.0, s.1))
            .collect::<Vec<_>>(),
        out.stats.mean_weight
    );
    assert!(merged.0 < 0.03, "highlights {:.3}", merged.0);
    assert!(
        merged.1 < 0.5 * singles[1].1,
        "shadows {:.3} vs 0 EV {:.3}",
        merged.1,
        singles[1].1
    );
    for (f, s) in singles.iter().enumerate() {
        assert!(
            s.0 > 0.2 || s.1 > 2.0 * merged.1,
            "frame {f} holds both: {s:?}"
        );
    }
    // The tone-mapped mosaic keeps both ends inside the output range.
    let tm = &out.mosaic;
    let mean = |x0: usize, x1: usize| {
        let v: Vec<f64> = region(x0, x1).map(|i| tm[i] as f64).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (bright, dark) = (mean(0, w / 3), mean(2 * w / 3, w));
    assert!(
        bright < 0.96 * WHITE as f64,
        "highlights clip after tone mapping: {bright}"
    );
    assert!(dark > BLACK as f64 + 8.0, "shadows crushed: {dark}");
}

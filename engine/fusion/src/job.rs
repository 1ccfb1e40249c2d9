//! The merge as the background lane runs it: a [`FusionJob`] (what to
//! merge, whom to tell), the GPU's share ([`GpuOps`]), and what comes back
//! ([`FusionDone`], [`FusionReply`]).

use super::*;
use isp_core::resource_manager::BufferRef;

/// An alignment done elsewhere (the GPU's), or why not.
pub type AlignWith<'a> = &'a dyn Fn(&Grey, &Grey) -> Result<Alignment, String>;

/// A burst merge done elsewhere (the GPU's): the merged mosaic, or why not.
pub type BurstMerge<'a> =
    &'a dyn Fn(&MergeSpec, &[&[u16]]) -> Result<(Vec<u16>, MergeStats), String>;

/// A bracket merged elsewhere (the GPU's): the linear mosaic and each
/// frame's share, or why not.
pub type BracketMerge<'a> =
    &'a dyn Fn(&MergeSpec, &[&[u16]]) -> Result<(Vec<f32>, Vec<f32>), String>;

/// A GPU's share of a merge: its name, the alignment, the burst merge and
/// the bracket merge.
pub struct GpuOps<'a> {
    pub name: &'a str,
    pub align: AlignWith<'a>,
    pub merge: BurstMerge<'a>,
    pub bracket: BracketMerge<'a>,
}

/// Called between bands of a merge's work: the background lane passes its
/// `yield_to_realtime`, so a merge steps aside while realtime work runs.
pub type Pause<'a> = &'a (dyn Fn() + Sync);

/// A merge for the background lane: what to merge, and whom to tell. The
/// envelope's inputs are the chosen frames' mosaics (in `selection.chosen`
/// order), its output the result's buffer.
#[derive(Debug)]
pub struct FusionJob {
    pub plan: FusionPlan,
    pub selection: Selection,
    /// The chosen frames', in order.
    pub infos: Vec<FrameInfo>,
    pub black: f32,
    /// The sensor's noise at unity gain.
    pub noise: NoiseModel,
    pub reply: crossbeam_channel::Sender<FusionReply>,
}

/// What a merge reports besides its mosaic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FusionDone {
    pub spec: MergeSpec,
    pub stats: MergeStats,
    /// A bracket's linear HDR mosaic.
    #[serde(skip)]
    pub hdr: Option<Vec<f32>>,
    pub align_ms: f64,
    pub merge_ms: f64,
    /// Where the merge ran: `cpu`, `gpu: <adapter>`, or the CPU after the
    /// GPU failed (and why).
    pub merged_on: String,
}

/// The merge's answer to whoever asked: its report and the result's
/// buffer (allocated to the asker), or why it failed (every buffer of the
/// plan then released).
#[derive(Debug)]
pub struct FusionReply {
    pub plan: PlanId,
    pub result: Result<(FusionDone, BufferRef), String>,
}

impl FusionJob {
    /// Run the merge on `inputs` into `output` (the background lane's
    /// worker calls this); frames are aligned and a burst merged on `gpu`
    /// when given, on the CPU where that fails.
    pub fn run(
        &self,
        inputs: &[BufferRef],
        output: &BufferRef,
        pause: Pause,
        gpu: Option<&GpuOps>,
    ) -> Result<FusionDone, String> {
        let (w, h) = (
            self.plan.format.width as usize,
            self.plan.format.height as usize,
        );
        let guards = inputs
            .iter()
            .map(|b| b.read().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let frames: Vec<&[u16]> = guards.iter().map(|g| g.u16s()).collect();
        let t0 = std::time::Instant::now();
        let fm = FusionManager::new();
        let spec = fm
            .build_merge_spec(
                &self.plan,
                &self.selection,
                &frames,
                &self.infos,
                self.black,
                self.noise,
                pause,
                gpu.map(|g| g.align),
            )
            .map_err(|e| e.to_string())?;
        let t1 = std::time::Instant::now();
        let mut merged_on = "cpu".to_string();
        let on_gpu = match (&spec.kind, gpu) {
            (FusionKind::Burst { .. }, Some(g)) => match (g.merge)(&spec, &frames) {
                Ok((mosaic, stats)) => {
                    merged_on = format!("gpu: {}", g.name);
                    Some(MergeOutput {
                        stats,
                        mosaic,
                        hdr: None,
                    })
                }
                Err(e) => {
                    merged_on = format!("cpu (the GPU merge failed: {e})");
                    None
                }
            },
            (FusionKind::Bracket { .. }, Some(g)) => match (g.bracket)(&spec, &frames) {
                Ok((lin, share)) => {
                    merged_on = format!("gpu: {}", g.name);
                    let p = &spec.params;
                    let (mosaic, _) = hdr::tone_map(&lin, w, h, p.black, p.white, 6.0);
                    Some(MergeOutput {
                        mosaic,
                        hdr: Some(lin),
                        stats: MergeStats {
                            mean_weight: share,
                            rejected_tiles: vec![0; frames.len()],
                        },
                    })
                }
                Err(e) => {
                    merged_on = format!("cpu (the GPU merge failed: {e})");
                    None
                }
            },
            _ => None,
        };
        let out = match on_gpu {
            Some(out) => out,
            None => FusionManager::merge(&spec, &frames, w, h, pause),
        };
        let mut o = output.write().map_err(|e| e.to_string())?;
        let dst = o.u16s_mut();
        if dst.len() < w * h {
            return Err(format!(
                "result buffer of {} samples for {}",
                dst.len(),
                w * h
            ));
        }
        dst[..w * h].copy_from_slice(&out.mosaic);
        Ok(FusionDone {
            spec,
            stats: out.stats,
            hdr: out.hdr,
            align_ms: (t1 - t0).as_secs_f64() * 1e3,
            merge_ms: t1.elapsed().as_secs_f64() * 1e3,
            merged_on,
        })
    }
}

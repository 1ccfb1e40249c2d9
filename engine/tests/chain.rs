//! The pixel chain is declared once (`stages::chain::CHAIN`); this holds the
//! code to it: every stage has its Rust and WGSL file of the same name, its
//! kernel is an entry point of the shader module, and the fused GPU preview
//! calls each stage's per-pixel function in the declared order (read from
//! naga's parse of the real module, so nested calls count in the order they
//! run).

#![allow(clippy::unwrap_used)]

use isp_engine::gpu::{SHADER_FILES, shader_source};
use isp_engine::stages::chain::{CHAIN, Tap};
use std::path::Path;

fn module() -> naga::Module {
    naga::front::wgsl::parse_str(&shader_source()).unwrap_or_else(|e| panic!("{e}"))
}

/// Calls in a block, in the order they run (nested blocks included).
fn calls(m: &naga::Module, block: &naga::Block, out: &mut Vec<String>) {
    use naga::Statement as S;
    for st in block.iter() {
        match st {
            S::Call { function, .. } => {
                out.push(m.functions[*function].name.clone().unwrap_or_default())
            }
            S::Block(b) => calls(m, b, out),
            S::If { accept, reject, .. } => {
                calls(m, accept, out);
                calls(m, reject, out);
            }
            S::Loop {
                body, continuing, ..
            } => {
                calls(m, body, out);
                calls(m, continuing, out);
            }
            S::Switch { cases, .. } => {
                for c in cases {
                    calls(m, &c.body, out);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn every_stage_has_its_rust_and_wgsl_file_and_kernel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = module();
    for d in CHAIN {
        assert!(
            root.join(format!("stages/src/stages/{}.rs", d.file))
                .is_file(),
            "{}: no engine/stages/src/stages/{}.rs",
            d.name,
            d.file
        );
        assert!(
            root.join(format!("../shaders/{}.wgsl", d.file)).is_file(),
            "{}: no shaders/{}.wgsl",
            d.name,
            d.file
        );
        assert!(
            SHADER_FILES.iter().any(|(f, _)| *f == d.file),
            "{} is not built into the shader module",
            d.file
        );
        assert!(
            m.entry_points.iter().any(|e| e.name == d.kernel),
            "{}: no entry point {}",
            d.name,
            d.kernel
        );
        assert!(
            m.functions
                .iter()
                .any(|(_, f)| f.name.as_deref() == Some(d.fused_fn)),
            "{}: no function {}",
            d.name,
            d.fused_fn
        );
    }
}

#[test]
fn the_fused_preview_runs_the_stages_in_the_declared_order() {
    let m = module();
    let tile = m
        .functions
        .iter()
        .find(|(_, f)| f.name.as_deref() == Some("fused_tile"))
        .map(|(_, f)| f)
        .expect("fused_tile in fused.wgsl");
    let mut order = Vec::new();
    calls(&m, &tile.body, &mut order);
    let wanted: Vec<&str> = CHAIN.iter().map(|d| d.fused_fn).collect();
    let first_calls: Vec<&str> = wanted
        .iter()
        .filter_map(|f| order.iter().position(|c| c == f).map(|i| (i, *f)))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    assert_eq!(first_calls, wanted, "calls in fused_tile: {order:?}");
    // The tap list is the chain.
    assert_eq!(Tap::ALL.len(), CHAIN.len());
}

#[test]
fn the_uniforms_match_the_shaders_params_field_for_field() {
    let m = module();
    let (members, span) = m
        .types
        .iter()
        .find_map(|(_, t)| match (&t.name, &t.inner) {
            (Some(n), naga::TypeInner::Struct { members, span }) if n == "Params" => {
                Some((members.clone(), *span))
            }
            _ => None,
        })
        .expect("struct Params in common.wgsl");
    let shader: Vec<(String, usize, usize)> = members
        .iter()
        .map(|mb| {
            (
                mb.name.clone().unwrap_or_default(),
                mb.offset as usize,
                m.types[mb.ty].inner.size(m.to_ctx()) as usize,
            )
        })
        .collect();
    let rust: Vec<(String, usize, usize)> = isp_engine::gpu::Uniforms::layout()
        .into_iter()
        .map(|(n, o, s)| (n.to_string(), o, s))
        .collect();
    assert_eq!(rust, shader);
    assert_eq!(
        std::mem::size_of::<isp_engine::gpu::Uniforms>(),
        span as usize
    );
}

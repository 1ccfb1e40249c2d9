//! ARCHITECTURE.md's layer table holds: a module of the engine uses only
//! modules of lower layers (`crate::x` paths in its code, comments aside),
//! so there are no import cycles and lower layers never know higher ones.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

/// `module -> layer` from the "## Layers" table: `| n | a, b, c | ... |`.
fn layers() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md");
    let section = doc
        .split("\n## Layers")
        .nth(1)
        .expect("a Layers section in ARCHITECTURE.md");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let layer: usize = cells[0].parse().expect("a layer number");
        for m in cells[1].split(',') {
            let m = m.trim().trim_matches('`');
            assert!(
                out.insert(m.to_string(), layer).is_none(),
                "{m} is listed twice"
            );
        }
    }
    out
}

/// The engine's top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let layers = layers();
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    // The lowest layers' own crate (re-exported by the engine under the
    // same names, so `crate::types` reads the same in both).
    let core = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/core/src"));
    // The pixel side's crate (its root `use`s core's modules, so its
    // `crate::types` is core's).
    let pixels = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/stages/src"));
    let mut files = Vec::new();
    rust_files(src, &mut files);
    rust_files(core, &mut files);
    rust_files(pixels, &mut files);
    let mut seen = std::collections::BTreeSet::new();
    // Crates that are one module of the table each (`engine/dng` is `dng`,
    // `engine/fusion` is `fusion`):
    // the compiler holds their dependencies (their manifests name only
    // lower crates), so only their presence is checked here.
    for (dir, m) in [("dng", "dng"), ("fusion", "fusion")] {
        let lib = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(dir)
            .join("src/lib.rs");
        assert!(lib.is_file(), "{}: no crate for {m}", lib.display());
        seen.insert(m.to_string());
    }
    // Modules written inline in lib.rs (`pub mod demo { .. }`).
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for l in lib.lines() {
        if let Some(m) = l
            .strip_prefix("pub mod ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            seen.insert(m.to_string());
        }
    }
    let mut wrong = Vec::new();
    for f in &files {
        let root = [core, pixels]
            .into_iter()
            .find(|r| f.starts_with(r))
            .unwrap_or(src);
        let Some(m) = module_of(root, f) else {
            continue;
        };
        seen.insert(m.clone());
        let Some(&mine) = layers.get(&m) else {
            wrong.push(format!(
                "module {m} is not in ARCHITECTURE.md's layer table"
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for part in code.split("crate::").skip(1) {
                let used: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used == m || used.is_empty() {
                    continue;
                }
                match layers.get(&used) {
                    Some(&theirs) if theirs < mine => {}
                    Some(&theirs) => wrong.push(format!(
                        "{}:{}: {m} (layer {mine}) uses {used} (layer {theirs})",
                        f.strip_prefix(root).unwrap().display(),
                        n + 1
                    )),
                    None => wrong.push(format!("{used} (used by {m}) is not in the table")),
                }
            }
        }
    }
    for m in layers.keys() {
        assert!(seen.contains(m), "the table lists {m}, which is no module");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

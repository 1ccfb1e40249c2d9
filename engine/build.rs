//! Embeds the demo session (assets/demo_session) into the engine, so the
//! CLI and the app can open it from any directory.

use std::io::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo_session");
    println!("cargo:rerun-if-changed={}", root.display());
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("demo_files.rs");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut f = std::fs::File::create(&out).expect("demo_files.rs");
    writeln!(f, "pub static FILES: &[(&str, &[u8])] = &[").expect("write");
    for rel in files {
        let abs = root.join(&rel);
        println!("cargo:rerun-if-changed={}", abs.display());
        writeln!(
            f,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .expect("write");
    }
    writeln!(f, "];").expect("write");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel.to_string_lossy().to_string();
            if !rel.ends_with(".tmp") {
                out.push(rel);
            }
        }
    }
}

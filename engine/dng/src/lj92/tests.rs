use super::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/lj92");

struct Vector {
    name: String,
    stream: Vec<u8>,
    expected: Vec<u16>,
    meta: BTreeMap<String, String>,
}

impl Vector {
    fn num(&self, key: &str) -> usize {
        self.meta[key].parse().unwrap()
    }
}

fn load(path: &Path) -> Vector {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let stream = std::fs::read(path).unwrap();
    let raw = std::fs::read(path.with_extension("u16")).unwrap();
    let expected = raw
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let meta = std::fs::read_to_string(path.with_extension("txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Vector {
        name,
        stream,
        expected,
        meta,
    }
}

fn vectors() -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(DATA_DIR)
        .unwrap_or_else(|e| panic!("cannot read {DATA_DIR}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ljpeg"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

fn vector(name: &str) -> Vector {
    load(&Path::new(DATA_DIR).join(format!("{name}.ljpeg")))
}

#[test]
fn decodes_every_vector() {
    let all = vectors();
    assert!(all.len() >= 40, "only {} vectors in {DATA_DIR}", all.len());
    for v in &all {
        let img = decode(&v.stream, 1 << 24).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(img.width, v.num("width"), "{}", v.name);
        assert_eq!(img.height, v.num("height"), "{}", v.name);
        assert_eq!(img.components, v.num("components"), "{}", v.name);
        assert_eq!(usize::from(img.precision), v.num("precision"), "{}", v.name);
        assert_eq!(img.samples.len(), v.expected.len(), "{}", v.name);
        if let Some(i) = (0..img.samples.len()).find(|&i| img.samples[i] != v.expected[i]) {
            panic!(
                "{}: sample {i} is {}, expected {}",
                v.name, img.samples[i], v.expected[i]
            );
        }
    }
}

#[test]
fn vectors_cover_the_features() {
    let all = vectors();
    let has = |key: &str, pred: &dyn Fn(usize) -> bool| all.iter().any(|v| pred(v.num(key)));
    for p in 1..=7 {
        assert!(has("predictor", &|x| x == p), "no vector for predictor {p}");
    }
    for c in 1..=4 {
        assert!(
            has("components", &|x| x == c),
            "no vector with {c} components"
        );
    }
    for b in [2, 8, 12, 14, 16] {
        assert!(has("precision", &|x| x == b), "no vector of precision {b}");
    }
    assert!(has("restart_interval", &|x| x > 0));
    assert!(has("point_transform", &|x| x > 0));
    assert!(has("width", &|x| x % 2 == 1));
    assert!(all.iter().any(|v| v.meta["encoder"].starts_with("libjpeg")));
    assert!(all.iter().any(|v| v.meta["encoder"].starts_with("liblj92")));
}

#[test]
fn every_truncation_is_an_error() {
    for name in [
        "mini_rst2rows_p6_b14_c2_9x8",
        "mini_pt3_rst_p5_b16_c3_7x6",
        "ljt_p4_b16_c4_7x5",
        "lj92_p6_b12_c1_21x11",
        "mini_longcodes_p1_b16_c1_21x12",
    ] {
        let v = vector(name);
        assert!(decode(&v.stream, 1 << 24).is_ok());
        for len in 0..v.stream.len() {
            let r = decode(&v.stream[..len], 1 << 24);
            assert!(r.is_err(), "{name} cut to {len} bytes decoded");
        }
    }
}

/// xorshift64*, for repeatable garbage.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_is_refused_without_panics() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for i in 0..3000 {
        let len = rng.below(300);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && len >= 2 {
            buf[0] = 0xFF;
            buf[1] = 0xD8;
        }
        assert!(decode(&buf, 1 << 20).is_err());
    }
}

#[test]
fn corrupted_vectors_do_not_panic() {
    let mut rng = Rng(0xDEAD_BEEF_0BAD_F00D);
    for v in vectors() {
        for _ in 0..200 {
            let mut s = v.stream.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(s.len());
                s[i] = match rng.below(4) {
                    0 => 0xFF,
                    1 => 0x00,
                    _ => rng.next() as u8,
                };
            }
            if let Ok(img) = decode(&s, 1 << 20) {
                assert_eq!(img.samples.len(), img.width * img.height * img.components);
            }
        }
    }
}

#[test]
fn max_samples_is_enforced() {
    let v = vector("ljt_p6_b14_c4_9x7");
    let n = 9 * 7 * 4;
    assert!(decode(&v.stream, n).is_ok());
    let e = decode(&v.stream, n - 1).unwrap_err();
    assert!(e.contains("limit"), "{e}");
}

fn header(precision: u8, h: u16, w: u16, nc: u8) -> Vec<u8> {
    let mut s = vec![0xFF, 0xD8, 0xFF, 0xC4, 0, 2 + 17 + 1, 0x00, 1];
    s.extend([0u8; 15]);
    s.push(0); // one code "0" for category 0
    s.extend([0xFF, 0xC3]);
    s.extend((8 + 3 * u16::from(nc)).to_be_bytes());
    s.push(precision);
    s.extend(h.to_be_bytes());
    s.extend(w.to_be_bytes());
    s.push(nc);
    for k in 0..nc {
        s.extend([k + 1, 0x11, 0]);
    }
    s.extend([0xFF, 0xDA]);
    s.extend((6 + 2 * u16::from(nc)).to_be_bytes());
    s.push(nc);
    for k in 0..nc {
        s.extend([k + 1, 0x00]);
    }
    s.extend([1, 0, 0]);
    s
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    let mut s = header(16, 65535, 65535, 4);
    s.extend([0u8; 64]);
    s.extend([0xFF, 0xD9]);
    let e = decode(&s, usize::MAX).unwrap_err();
    assert!(e.contains("only"), "{e}");
    let e = decode(&s, 1 << 26).unwrap_err();
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn single_code_table_decodes_flat_image() {
    // One code ("0", category 0): every sample equals the initial predictor.
    let mut s = header(12, 3, 5, 2);
    s.extend([0x00, 0x00, 0x00, 0x03, 0xFF, 0xD9]); // 30 zero bits, 1-padding
    let img = decode(&s, 1000).unwrap();
    assert_eq!((img.width, img.height, img.components), (5, 3, 2));
    assert!(img.samples.iter().all(|&x| x == 2048));
}

#[test]
fn other_sofs_are_refused() {
    let v = vector("ljt_p1_b8_c1_31x9");
    let at = v.stream.windows(2).position(|w| w == [0xFF, 0xC3]).unwrap();
    for (m, word) in [
        (0xC0u8, "baseline"),
        (0xC2, "progressive"),
        (0xCB, "arithmetic"),
    ] {
        let mut s = v.stream.clone();
        s[at + 1] = m;
        let e = decode(&s, 1 << 20).unwrap_err();
        assert!(
            e.contains(&format!("SOF{}", m - 0xC0)) && e.contains(word),
            "{e}"
        );
        assert!(e.contains(&format!("byte offset {at}")), "{e}");
    }
}

#[test]
fn specific_refusals() {
    // no SOI
    assert!(decode(b"", 10).unwrap_err().contains("SOI"));
    // missing EOI after a complete scan
    let v = vector("ljt_p3_b12_c1_1x1");
    let e = decode(&v.stream[..v.stream.len() - 2], 10).unwrap_err();
    assert!(e.contains("EOI"), "{e}");
    // sampling factors
    let mut s = header(12, 2, 2, 1);
    let at = s.windows(2).position(|w| w == [0xFF, 0xC3]).unwrap();
    s[at + 2 + 2 + 6 + 1] = 0x21;
    assert!(decode(&s, 100).unwrap_err().contains("sampling"));
    // predictor 0
    let mut s = header(12, 2, 2, 1);
    let n = s.len();
    s[n - 3] = 0;
    assert!(decode(&s, 100).unwrap_err().contains("predictor"));
    // precision 17 and 1
    for p in [1, 17] {
        let s = header(p, 2, 2, 1);
        assert!(decode(&s, 100).unwrap_err().contains("precision"));
    }
    // five components
    let s = header(12, 2, 2, 5);
    assert!(decode(&s, 100).unwrap_err().contains("components"));
    // point transform >= precision
    let mut s = header(8, 2, 2, 1);
    let n = s.len();
    s[n - 1] = 8;
    assert!(decode(&s, 100).unwrap_err().contains("point transform"));
    // wrong restart marker number
    let v = vector("mini_rst1row_p7_b12_c1_13x5");
    let mut s = v.stream.clone();
    let at = s.windows(2).position(|w| w == [0xFF, 0xD0]).unwrap();
    s[at + 1] = 0xD3;
    let e = decode(&s, 1 << 20).unwrap_err();
    assert!(
        e.contains("RST0") && e.contains(&format!("byte offset {at}")),
        "{e}"
    );
}

#[test]
fn scan_order_differing_from_frame_order_is_honoured() {
    // Swap the two components in the SOS: the first difference of each
    // pixel now belongs to the frame's second component.
    let v = vector("ljt_p1_b14_c2_17x9");
    let mut s = v.stream.clone();
    let sos = s.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let (a, b) = (s[sos + 5], s[sos + 7]);
    s[sos + 5] = b;
    s[sos + 7] = a;
    let img = decode(&s, 1 << 20).unwrap();
    let swapped: Vec<u16> = v
        .expected
        .chunks_exact(2)
        .flat_map(|p| [p[1], p[0]])
        .collect();
    assert_eq!(img.samples, swapped);
}

#[test]
fn category_16_needs_no_extra_bits() {
    // 16-bit, one row [32768, 0]: table {0: "0", 16: "10"}; the first
    // difference is 32768 - 32768 = 0, the second 0 - 32768 = cat 16.
    let mut s = vec![0xFF, 0xD8, 0xFF, 0xC4, 0, 2 + 17 + 2, 0x00, 1, 1];
    s.extend([0u8; 14]);
    s.extend([0, 16]);
    s.extend([0xFF, 0xC3, 0, 11, 16, 0, 1, 0, 3, 1, 1, 0x11, 0]);
    s.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 1, 0, 0]);
    // codes: 0, 10, 0 -> bits 0100 then 1-padding: 0b0100_1111
    s.extend([0x4F, 0xFF, 0xD9]);
    let img = decode(&s, 10).unwrap();
    assert_eq!(img.samples, vec![32768, 0, 0]);
}

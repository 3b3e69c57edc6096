//! Property tests: malformed input of any kind (random bytes, random specs, deep nesting) is an error, never a panic.

use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;

/// The host API's dynamic-value messages (the engine is told their names; it does not know them).
fn dynamic() -> rust_mapper::DynamicTypes {
    rust_mapper::DynamicTypes::new(
        "returnbridge.api.v1.CustomValue",
        "returnbridge.api.v1.CustomList",
        "returnbridge.api.v1.CustomStruct",
    )
}

fn descriptors() -> Vec<u8> {
    fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/mapping/cases/ops/descriptors.bin"))
        .expect("descriptors")
}

fn program(case: &str) -> rust_mapper::Program {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/mapping/cases/ops").join(case).join("compiled");
    rust_mapper::compile(&fs::read(dir.join("spec.json")).unwrap(), &descriptors(), &dynamic()).unwrap()
}

const STEPS: &[&str] = &[
    r#"{"op":"string"}"#,
    r#"{"op":"integer"}"#,
    r#"{"op":"decimal","scale":2,"rounding":"half_even"}"#,
    r#"{"op":"number"}"#,
    r#"{"op":"bool"}"#,
    r#"{"op":"date","from":"auto","to":"ms_date"}"#,
    r#"{"op":"minor_units","exponent":2,"currency":null}"#,
    r#"{"op":"trim"}"#,
    r#"{"op":"upper"}"#,
    r#"{"op":"pad_left","width":5,"char":"0"}"#,
    r#"{"op":"max_length","length":3,"on_overflow":"truncate","label":""}"#,
    r#"{"op":"split","separator":"-","index":1}"#,
    r#"{"op":"replace","pattern":"[0-9]","with":"N"}"#,
    r#"{"op":"extract","pattern":"([A-Z]+)","group":1}"#,
    r#"{"op":"negate"}"#,
    r#"{"op":"default","value":"x"}"#,
];

const SOURCES: &[&str] = &[
    r#"{"path":{"text":"rma_number","up":0,"root":false,"special":null,"segs":[{"f":"rma_number"}]}}"#,
    r#"{"path":{"text":"version","up":0,"root":false,"special":null,"segs":[{"f":"version"}]}}"#,
    r#"{"path":{"text":"event_time","up":0,"root":false,"special":null,"segs":[{"f":"event_time"}]}}"#,
    r#"{"path":{"text":"lines[0].quantity","up":0,"root":false,"special":null,"segs":[{"f":"lines"},{"i":0},{"f":"quantity"}]}}"#,
    r#"{"const":"12.5"}"#,
    r#"{"const":-7}"#,
    r#"{"mul":[{"const":"1.5"},{"path":{"text":"version","up":0,"root":false,"special":null,"segs":[{"f":"version"}]}}]}"#,
];

fn spec_with(source: &str, steps: &[usize]) -> Vec<u8> {
    let pipe: Vec<&str> = steps.iter().map(|i| STEPS[*i % STEPS.len()]).collect();
    format!(
        r#"{{"id":"fuzz/x","direction":"outbound","input":"returnbridge.api.v1.ReturnOrder","output":"json","tables":{{}},"rules":[{{"id":"r","target":["out"],"value":{source},"pipe":[{}],"required":false}}]}}"#,
        pipe.join(",")
    )
    .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_outbound(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let prog = program("return_authorization");
        let _ = prog.translate(&bytes);
    }

    #[test]
    fn random_bytes_never_panic_inbound(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let prog = program("inventory_level");
        let _ = prog.translate(&bytes);
    }

    #[test]
    fn random_json_text_never_panics(text in r#"[\[\]{}",:0-9a-z.eE+\- ]{0,200}"#) {
        let prog = program("inventory_level");
        let _ = prog.translate(text.as_bytes());
    }

    #[test]
    fn random_spec_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = rust_mapper::compile(&bytes, &descriptors(), &dynamic());
    }

    #[test]
    fn random_pipelines_never_panic(source in 0..SOURCES.len(), steps in proptest::collection::vec(0..64usize, 0..6)) {
        let spec = spec_with(SOURCES[source], &steps);
        let prog = rust_mapper::compile(&spec, &descriptors(), &dynamic()).expect("generated spec compiles");
        let input = fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/mapping/cases/ops/return_authorization/compiled/input.bin")).unwrap();
        let _ = prog.translate(&input);
    }
}

#[test]
fn deep_nesting_is_an_error() {
    let prog = program("inventory_level");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(prog.translate(deep.as_bytes()).is_err());
    // A protobuf message nested 100k levels deep through field 11 (lines) of ReturnOrder is rejected too.
    let mut msg = Vec::new();
    for _ in 0..100_000 {
        let mut outer = vec![0x5a];
        let mut len = msg.len();
        while len >= 0x80 {
            outer.push((len as u8) | 0x80);
            len >>= 7;
        }
        outer.push(len as u8);
        outer.extend_from_slice(&msg);
        msg = outer;
        if msg.len() > 2_000_000 {
            break;
        }
    }
    let _ = program("return_authorization").translate(&msg);
}

/// The straightforward digit-by-digit i128 parser the fast path in `Decimal::parse` must agree with.
fn reference_parse(text: &str) -> Option<Result<(i128, u32), ()>> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let exp: i64 = match exp {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) || digits.len() > 5 {
                return None;
            }
            e.parse().ok()?
        }
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.len() + frac.len() == 0 || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut coef: i128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        coef = match coef.checked_mul(10).and_then(|v| v.checked_add(i128::from(c - b'0'))) {
            Some(v) if v <= rust_mapper::decimal::MAX_COEF => v,
            _ => return Some(Err(())),
        };
    }
    let shift = exp - frac.len() as i64;
    let coef = if neg { -coef } else { coef };
    if shift <= 0 {
        return Some(if -shift > 38 { Err(()) } else { Ok((coef, (-shift) as u32)) });
    }
    if shift > 38 {
        return Some(if coef == 0 { Ok((0, 0)) } else { Err(()) });
    }
    match 10i128.checked_pow(shift as u32).and_then(|p| coef.checked_mul(p)) {
        Some(m) if (-rust_mapper::decimal::MAX_COEF..=rust_mapper::decimal::MAX_COEF).contains(&m) => Some(Ok((m, 0))),
        _ => Some(Err(())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn decimal_parse_matches_reference(text in r"[+-]?[0-9]{0,45}(\.[0-9]{0,45})?([eE][+-]?[0-9]{1,3})?") {
        let ours = rust_mapper::decimal::Decimal::parse(&text).map(|r| r.map(|d| (d.coef(), d.scale())).map_err(|_| ()));
        prop_assert_eq!(ours, reference_parse(&text), "{}", text);
    }
}

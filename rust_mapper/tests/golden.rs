//! Runs the shared golden cases (`tests/mapping/cases/ops/*/compiled`, written by `scripts/compile_cases.py`).

use std::fs;
use std::path::{Path, PathBuf};

/// The host API's dynamic-value messages (the engine is told their names; it does not know them).
fn dynamic() -> rust_mapper::DynamicTypes {
    rust_mapper::DynamicTypes::new(
        "returnbridge.api.v1.CustomValue",
        "returnbridge.api.v1.CustomList",
        "returnbridge.api.v1.CustomStruct",
    )
}

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/mapping/cases/ops")
}

fn run_case(case: &Path, descriptors: &[u8]) -> Result<(), String> {
    let compiled = case.join("compiled");
    let spec = fs::read(compiled.join("spec.json")).map_err(|e| e.to_string())?;
    let input = fs::read(compiled.join("input.bin")).map_err(|e| e.to_string())?;
    let prog = rust_mapper::compile(&spec, descriptors, &dynamic()).map_err(|e| format!("compile: {e}"))?;
    let result = prog.translate(&input);
    // `explain` runs every rule through the general interpreter; `translate` takes the fast paths. Same result.
    let general = prog.explain(&input).map(|(out, _)| out);
    match (&result, &general) {
        (Ok(a), Ok(b)) if a == b => {}
        (Err(a), Err(b)) if (&a.rule, &a.path, &a.message) == (&b.rule, &b.path, &b.message) => {}
        _ => return Err(format!("translate and explain disagree: {result:?} vs {general:?}")),
    }
    if let Ok(expected_error) = fs::read_to_string(case.join("expected_error.txt")) {
        let mut parts = expected_error.trim_end_matches('\n').splitn(3, '|');
        let (rule, path, message) = (parts.next(), parts.next(), parts.next());
        return match result {
            Ok(out) => Err(format!("expected an error, got {}", String::from_utf8_lossy(&out))),
            Err(e)
                if Some(e.rule.as_str()) == rule
                    && Some(e.path.as_str()) == path
                    && Some(e.message.as_str()) == message =>
            {
                Ok(())
            }
            Err(e) => Err(format!("wrong error: {}|{}|{}", e.rule, e.path, e.message)),
        };
    }
    let expected = fs::read(compiled.join("expected.bin")).map_err(|e| e.to_string())?;
    match result {
        Ok(out) if out == expected => Ok(()),
        Ok(out) => Err(format!(
            "output differs:\n got {}\nwant {}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        )),
        Err(e) => Err(format!("unexpected error: {e} (rule {})", e.rule)),
    }
}

#[test]
fn golden_cases() {
    let dir = cases_dir();
    let descriptors = fs::read(dir.join("descriptors.bin")).expect("descriptors.bin (run scripts/compile_cases.py)");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("cases dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("compiled").is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "expected golden cases in {}", dir.display());
    let failures: Vec<String> =
        cases.iter().filter_map(|c| run_case(c, &descriptors).err().map(|e| format!("{}: {e}", c.display()))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn explain_names_rules_and_paths() {
    let dir = cases_dir();
    let descriptors = fs::read(dir.join("descriptors.bin")).expect("descriptors");
    let case = dir.join("return_authorization/compiled");
    let prog = rust_mapper::compile(&fs::read(case.join("spec.json")).unwrap(), &descriptors, &dynamic()).unwrap();
    let (out, entries) = prog.explain(&fs::read(case.join("input.bin")).unwrap()).unwrap();
    assert_eq!(out, fs::read(case.join("expected.bin")).unwrap());
    let serial = entries
        .iter()
        .find(|e| e.output_path == "item.items[1].inventoryDetail.inventoryAssignment.items[1].receiptInventoryNumber")
        .expect("serial entry");
    assert_eq!(serial.rule, "lines.serial");
    assert_eq!(serial.input_path, "lines[1].serial_numbers[1]");
    assert!(entries.iter().any(|e| e.rule == "lines.serial.qty" && e.input_path.is_empty()));
}

#[test]
fn translate_many_keeps_order_and_results() {
    let dir = cases_dir();
    let descriptors = fs::read(dir.join("descriptors.bin")).expect("descriptors");
    let case = dir.join("return_authorization/compiled");
    let prog = rust_mapper::compile(&fs::read(case.join("spec.json")).unwrap(), &descriptors, &dynamic()).unwrap();
    let good = fs::read(case.join("input.bin")).unwrap();
    let bad = b"\xff\xff".to_vec();
    let inputs: Vec<&[u8]> = (0..1000).map(|i| if i % 7 == 3 { bad.as_slice() } else { good.as_slice() }).collect();
    let many = prog.translate_many(&inputs);
    assert_eq!(many.len(), inputs.len());
    for (input, result) in inputs.iter().zip(&many) {
        assert_eq!(result, &prog.translate(input));
    }
}

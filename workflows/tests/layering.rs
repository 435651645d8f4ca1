//! The workflow crate's layering rule (`src/lib.rs`): a module uses only modules declared after
//! it in `lib.rs`, so the code reads top-down like the state diagram and has no import circles.

use std::collections::BTreeMap;

fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
}

#[test]
fn modules_use_only_modules_below_them() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let order: Vec<String> = code_lines(&lib)
        .filter_map(|l| {
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    assert!(order.len() >= 10, "modules of lib.rs: {order:?}");
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut wrong = Vec::new();
    for (i, module) in order.iter().enumerate() {
        let text = std::fs::read_to_string(src.join(format!("{module}.rs")))
            .unwrap_or_else(|e| panic!("{module}.rs: {e}"));
        for line in code_lines(&text) {
            for (at, _) in line.match_indices("crate::") {
                let used: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(&j) = rank.get(used.as_str()) {
                    if j <= i {
                        wrong.push(format!("{module} uses {used}: {}", line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a module may only use modules declared after it in lib.rs:\n{}",
        wrong.join("\n")
    );
}

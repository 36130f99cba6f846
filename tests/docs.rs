//! The documentation against the code: the configuration table lists exactly the variables the
//! code reads, and the README's map of `docs/` links every page there, each of which exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn rust_sources(folder: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("a folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

fn variable_name(text: &str) -> Option<&str> {
    let name = &text[..text.find('"')?];
    let shaped = name.len() > 2 && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    shaped.then_some(name)
}

/// Every name the code reads from the environment: the config's readers and `std::env::var`.
fn variables_read() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_sources(&root().join("core/src"), &mut files);
    let readers = ["text(\"", "secret(\"", "parse(\"", "required(\"", "env::var(\"", "env::var_os(\""];
    let mut names = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for reader in readers {
            for (at, _) in source.match_indices(reader) {
                if let Some(name) = variable_name(&source[at + reader.len()..]) {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

/// The variables the configuration table of docs/operations.md names, in its first column.
fn variables_documented() -> BTreeSet<String> {
    let page = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let table = page.split("## Configuration").nth(1).expect("a configuration section");
    let mut names = BTreeSet::new();
    for row in table.lines().filter(|line| line.starts_with("| `")) {
        let first_column = row.split('|').nth(1).unwrap_or_default();
        for quoted in first_column.split('`').skip(1).step_by(2) {
            names.insert(quoted.to_string());
        }
    }
    names
}

#[test]
fn the_configuration_table_lists_exactly_the_variables_the_code_reads() {
    let (read, documented) = (variables_read(), variables_documented());
    assert!(read.len() > 50, "the scan found the config's readers: {read:?}");
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let unread: Vec<_> = documented.difference(&read).collect();
    assert!(undocumented.is_empty(), "read by the code, missing from docs/operations.md: {undocumented:?}");
    assert!(unread.is_empty(), "in docs/operations.md, read by no code: {unread:?}");
}

#[test]
fn the_readme_maps_every_page_of_docs_and_every_link_resolves() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.lines().count() <= 200, "the README fits a screen or two: {} lines", readme.lines().count());
    for page in std::fs::read_dir(root().join("docs")).unwrap().flatten() {
        let name = page.file_name().to_string_lossy().to_string();
        assert!(readme.contains(&format!("(docs/{name})")), "the README links docs/{name}");
    }
    let mut pages = vec![(root().join("README.md"), readme)];
    for page in std::fs::read_dir(root().join("docs")).unwrap().flatten() {
        pages.push((page.path(), std::fs::read_to_string(page.path()).unwrap()));
    }
    for (path, text) in &pages {
        for (at, _) in text.match_indices("](") {
            let target = &text[at + 2..];
            let target = &target[..target.find(')').unwrap_or(0)];
            if target.starts_with("http") || target.starts_with('#') || target.is_empty() {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let resolved = path.parent().unwrap().join(file);
            assert!(resolved.exists(), "{}: the link {target} leads nowhere", path.display());
        }
    }
}

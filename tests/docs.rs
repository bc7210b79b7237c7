//! The documentation read against the code, where the two can drift apart:
//! every settings section and key is in `docs/configuration.md` (or the page
//! its section links to), every tracking number shown has the shape the
//! code gives, and the README's webhook examples print the answer's status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `pub` fields of `pub struct name { … }` in `source`, if it is there.
fn struct_fields(source: &str, name: &str) -> Option<Vec<(String, String)>> {
    let start = source.find(&format!("pub struct {name} {{"))?;
    let body = &source[start..];
    let end = body.find("\n}")?;
    let fields = body[..end]
        .lines()
        .skip(1)
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub ")?;
            let (field, ty) = rest.split_once(':')?;
            let field = field.trim();
            field
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                .then(|| {
                    (
                        field.to_string(),
                        ty.trim().trim_end_matches(',').to_string(),
                    )
                })
        })
        .collect();
    Some(fields)
}

/// Every settings struct's fields, by struct name, from `src/settings/`.
fn settings_structs() -> BTreeMap<String, Vec<(String, String)>> {
    let mut sources = String::new();
    let dir = root().join("src/settings");
    for entry in std::fs::read_dir(&dir).expect("src/settings") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push_str(&read(&path));
            sources.push('\n');
        }
    }
    let mut out = BTreeMap::new();
    for chunk in sources.split("pub struct ").skip(1) {
        let name: String = chunk
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(fields) = struct_fields(&sources, &name) {
            out.insert(name, fields);
        }
    }
    out
}

/// The text of `## \`[section]\``, up to the next `## ` heading, and of
/// every page of `docs/` it links to.
fn section_text(docs: &Path, page: &str, section: &str) -> Option<String> {
    let heading = format!("## `[{section}]`");
    let start = page.find(&heading)?;
    let rest = &page[start + heading.len()..];
    let own = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut text = own.to_string();
    for link in own.split("](").skip(1) {
        let target = link.split([')', '#']).next().unwrap_or("");
        if target.ends_with(".md") && !target.contains("://") {
            text.push('\n');
            text.push_str(&read(&docs.join(target)));
        }
    }
    Some(text)
}

#[test]
fn every_settings_section_and_key_is_documented() {
    let structs = settings_structs();
    let docs = root().join("docs");
    let page = read(&docs.join("configuration.md"));
    let config = structs.get("Config").expect("pub struct Config");
    let mut missing = Vec::new();
    for (section, ty) in config {
        if section == "instances" {
            assert!(page.contains("## `[[instances]]`"));
            continue;
        }
        let Some(text) = section_text(&docs, &page, section) else {
            missing.push(format!("[{section}]: no `## `[{section}]`` heading"));
            continue;
        };
        let fields = structs
            .get(ty.as_str())
            .unwrap_or_else(|| panic!("struct {ty} of [{section}]"));
        for (field, _) in fields {
            let named = [
                format!("`{field}`"),
                format!("`{field} = "),
                format!("{section}.{field}"),
                format!("\n{field} = "),
            ];
            if !named.iter().any(|n| text.contains(n.as_str())) {
                missing.push(format!("[{section}] {field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md (or the page its section links to) does not name: {missing:#?}"
    );
}

/// Every `ADU-…` number in the README and `docs/` (an ellipsis aside) has
/// the shape of one the code gives: groups of four Crockford characters.
#[test]
fn tracking_numbers_in_the_docs_have_the_shape_the_code_gives() {
    let id = "01KBX4T9M2Q8R7ZP3N6V5W1HJD";
    let shapes: Vec<Vec<usize>> = aduan::tracking::candidates("ADU", id)
        .iter()
        .map(|n| n.split('-').skip(1).map(str::len).collect())
        .collect();
    let crockford = |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c));
    let mut pages = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let mut wrong = Vec::new();
    let mut seen = 0;
    for path in &pages {
        let text = read(path);
        for (at, _) in text.match_indices("ADU-") {
            let number: String = text[at + 4..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let number = number.trim_end_matches('-');
            if number.is_empty() {
                continue; // `ADU-…`: a number left out
            }
            seen += 1;
            let groups: Vec<&str> = number.split('-').collect();
            let shape: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            if !shapes.contains(&shape) || !number.chars().all(|c| c == '-' || crockford(c)) {
                wrong.push(format!("{}: ADU-{number}", path.display()));
            }
        }
    }
    assert!(seen > 5, "the docs show tracking numbers");
    assert!(wrong.is_empty(), "not a number the code gives: {wrong:#?}");
}

/// A webhook answers `200` with an empty body: without `-w` the README's
/// `curl` examples would print nothing.
#[test]
fn readme_webhook_examples_print_the_status() {
    let readme = read(&root().join("README.md"));
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in readme.lines() {
        if current.is_empty() && !line.trim_start().starts_with("curl ") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if !line.trim_end().ends_with('\\') {
            commands.push(std::mem::take(&mut current));
        }
    }
    let webhooks: Vec<&String> = commands
        .iter()
        .filter(|c| c.contains("/webhooks/"))
        .collect();
    assert!(webhooks.len() >= 2, "the README shows webhook examples");
    for command in webhooks {
        assert!(
            command.contains("-w '%{http_code}\\n'"),
            "prints nothing on success: {command}"
        );
    }
}

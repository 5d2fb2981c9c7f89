//! The scenarios shipped with splitlab, embedded in the binary by `build.rs` (every file under
//! `scenarios/`), so `splitlab run canary-rollout` works from any directory and `splitlab
//! scenarios` can list them. Owns only lookup and the one-line purpose read from each file's
//! header comment; loading stays in `scenario::load`.

mod files {
    include!(concat!(env!("OUT_DIR"), "/shipped_scenarios.rs"));
}

/// The folder the shipped scenarios live in, in a clone of the repository.
pub const FOLDER: &str = "scenarios";

/// One shipped scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    /// Its name on the command line: the file name without `.yaml`.
    pub name: &'static str,
    /// Its path relative to `scenarios/`.
    pub file: &'static str,
    /// The file's text.
    pub text: &'static str,
}

impl Shipped {
    /// What the scenario is for: its header comment's first paragraph, without the leading
    /// `NAME:` the files start with.
    pub fn purpose(&self) -> String {
        let paragraph: Vec<&str> = self
            .text
            .lines()
            .map_while(|l| l.strip_prefix('#'))
            .map(str::trim)
            .take_while(|l| !l.is_empty())
            .collect();
        let joined = paragraph.join(" ");
        let prefix = format!("{}:", self.name);
        joined
            .strip_prefix(&prefix)
            .map(str::trim_start)
            .unwrap_or(&joined)
            .to_string()
    }
}

/// The shipped scenarios (the `.yaml` files directly under `scenarios/`; the manifests and
/// ConfigMaps under `scenarios/knative/` are inputs they read), sorted by name.
pub fn all() -> impl Iterator<Item = Shipped> {
    files::FILES.iter().filter_map(|&(file, text)| {
        let name = file.strip_suffix(".yaml")?;
        (!name.contains('/')).then_some(Shipped { name, file, text })
    })
}

/// The shipped scenarios' names, comma-separated, for messages that say what is shipped.
pub fn names() -> String {
    all().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// The shipped scenario `query` names: `canary-rollout`, `canary-rollout.yaml` or
/// `scenarios/canary-rollout.yaml` (the path it has in a clone).
pub fn find(query: &str) -> Option<Shipped> {
    let query = query.strip_prefix("./").unwrap_or(query);
    let query = query
        .strip_prefix(FOLDER)
        .and_then(|q| q.strip_prefix('/'))
        .unwrap_or(query);
    let name = query.strip_suffix(".yaml").unwrap_or(query);
    all().find(|s| s.name == name)
}

/// A shipped file by its path relative to `scenarios/` (`knative/helloworld.yaml`); `.` and
/// `..` components are resolved, and nothing outside the folder is found.
pub fn file(rel: &str) -> Option<&'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let wanted = parts.join("/");
    files::FILES
        .iter()
        .find(|(f, _)| *f == wanted)
        .map(|&(_, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scenario in the folder is embedded, and nothing else is listed as a scenario.
    #[test]
    fn every_scenario_file_is_shipped() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FOLDER);
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("the scenarios folder exists in the source tree")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
            .collect();
        on_disk.sort();
        let shipped: Vec<&str> = all().map(|s| s.name).collect();
        assert_eq!(shipped, on_disk);
        for s in all() {
            let text = std::fs::read_to_string(dir.join(s.file)).expect("listed file exists");
            assert_eq!(s.text, text, "{} is embedded as it is on disk", s.file);
        }
    }

    #[test]
    fn find_accepts_a_name_a_file_name_and_the_clone_path() {
        let cases = [
            // the name
            ("canary-rollout", Some("canary-rollout")),
            // the file name
            ("canary-rollout.yaml", Some("canary-rollout")),
            // the path in a clone, with and without ./
            ("scenarios/canary-rollout.yaml", Some("canary-rollout")),
            ("./scenarios/three-way-split.yaml", Some("three-way-split")),
            // a manifest is an input, not a scenario
            ("knative/helloworld", None),
            ("knative/helloworld.yaml", None),
            // unknown
            ("nope", None),
            ("", None),
        ];
        for (query, want) in cases {
            assert_eq!(find(query).map(|s| s.name), want, "{query:?}");
        }
    }

    #[test]
    fn file_resolves_relative_paths_inside_the_folder_only() {
        assert!(file("knative/helloworld.yaml").is_some());
        assert!(file("./knative/../knative/helloworld.yaml").is_some());
        // outside the folder: nothing, even though a file of that name may exist elsewhere
        assert_eq!(file("../Cargo.toml"), None);
        assert_eq!(file("knative/nope.yaml"), None);
    }

    #[test]
    fn purpose_is_the_header_paragraph_without_the_name() {
        let s = find("canary-rollout").expect("shipped");
        assert_eq!(
            s.purpose(),
            "a gradual rollout (serving.knative.dev/rollout-duration) of a busy service. \
             The default scenario of `splitlab run`."
        );
        // every shipped scenario says what it is for
        for s in all() {
            assert!(!s.purpose().is_empty(), "{} has no header comment", s.file);
        }
    }
}

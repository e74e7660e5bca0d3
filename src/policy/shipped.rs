//! The policies shipped with poortwachter, embedded in the binary: `poortwachter policy install`
//! writes them into a policies directory, and `demo` runs on them wherever it is started.

/// File name and text of each shipped policy.
pub const SHIPPED: [(&str, &str); 4] = [
    (
        "zorginzage-thuiszorgdossier-door-huisarts.toml",
        include_str!("../../policies/zorginzage-thuiszorgdossier-door-huisarts.toml"),
    ),
    (
        "hub-dossier.toml",
        include_str!("../../policies/hub-dossier.toml"),
    ),
    (
        "zorgdomein.toml",
        include_str!("../../policies/zorgdomein.toml"),
    ),
    (
        "medmij-48.toml",
        include_str!("../../policies/medmij-48.toml"),
    ),
];

/// The text of the shipped policy `name` (file name without `.toml`).
#[must_use]
pub fn text(name: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(file, _)| file.strip_suffix(".toml") == Some(name))
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_policy_compiles_and_equals_the_file_in_the_repository() {
        for (file, text) in SHIPPED {
            let name = file.strip_suffix(".toml").unwrap();
            crate::policy::PolicySet::compile_any(file, name, text).unwrap();
            let on_disk = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("policies")
                    .join(file),
            )
            .unwrap();
            assert_eq!(on_disk, text, "{file}");
        }
        let in_repo =
            std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
                .unwrap()
                .count();
        assert_eq!(in_repo, SHIPPED.len(), "every file in policies/ is shipped");
        assert!(text("hub-dossier").is_some());
        assert!(text("nope").is_none());
    }
}

//! What the configuration's parts share to report a problem: [`ConfigError`] (where, which key,
//! why), [`Lines`] (the `file:line` of a key and numbers checked against their range) and the
//! path-prefix rule. A leaf: the sections parsed outside this module (`zorgdomein`, `egress`)
//! import these from here, and [`super`] imports their settings, without a circle.

/// A configuration problem: where, which key, why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {key}: {reason}")]
pub struct ConfigError {
    /// File (with line), environment variable or flag.
    pub origin: String,
    /// The key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// A number in the file, with where it was written (for the error that names its line).
pub(crate) type Num<T> = Option<toml::Spanned<T>>;

/// The file's text, to name the line of a key in an error.
pub(crate) struct Lines<'a> {
    pub(super) origin: &'a str,
    pub(super) text: &'a str,
}

impl<'a> Lines<'a> {
    /// The text of the file at `origin`.
    #[cfg(test)]
    pub(crate) fn new(origin: &'a str, text: &'a str) -> Self {
        Self { origin, text }
    }

    /// `file:line` of a span of the text.
    fn at(&self, span: std::ops::Range<usize>) -> String {
        let line = self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        format!("{}:{line}", self.origin)
    }

    /// The value of a numeric key: its default when absent, else it must lie in `range`; an
    /// error names the file and line, the key and the allowed range.
    pub(crate) fn ranged<T>(
        &self,
        key: &str,
        value: &Num<T>,
        default: T,
        range: std::ops::RangeInclusive<T>,
        why: &str,
    ) -> Result<T, ConfigError>
    where
        T: PartialOrd + Copy + std::fmt::Display,
    {
        let Some(v) = value else {
            return Ok(default);
        };
        let n = *v.get_ref();
        if range.contains(&n) {
            return Ok(n);
        }
        Err(ConfigError {
            origin: self.at(v.span()),
            key: key.to_owned(),
            reason: format!(
                "must be between {} and {}{why} (got {n})",
                range.start(),
                range.end()
            ),
        })
    }
}

/// A valid path prefix: `/`, or `/` followed by segments of unreserved characters, no trailing
/// slash.
#[must_use]
pub fn valid_path_prefix(prefix: &str) -> bool {
    prefix == "/"
        || (prefix.starts_with('/')
            && !prefix.ends_with('/')
            && prefix.split('/').skip(1).all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            }))
}

//! Walking the parsed document: tables with their spans, every key looked up by name, what is
//! left over reported as unknown, every problem recorded with its key and line.
//!
//! The document is walked by hand (rather than deserialized with serde) so that one bad value
//! never hides the others and every problem keeps the exact line of its key or value.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, Problem};

/// A value with its span in the text.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Line lookup and the problems found so far.
pub(crate) struct Ctx {
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Every problem found, in the order found.
    pub(crate) errors: Vec<ConfigError>,
    /// Whether files named in the configuration are read and checked too.
    pub(crate) check_files: bool,
}

impl Ctx {
    pub(crate) fn new(text: &str, check_files: bool) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            line_starts,
            errors: Vec::new(),
            check_files,
        }
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// Records a problem at `span` (its first line), or without a line.
    pub(crate) fn error(
        &mut self,
        key: impl Into<String>,
        span: Option<&Range<usize>>,
        problem: Problem,
    ) {
        let line = span.map(|s| self.line_of(s.start));
        self.errors.push(ConfigError {
            key: key.into(),
            line,
            problem,
        });
    }
}

/// One table of the document, with the keys read from it so far.
pub(crate) struct Section<'a, 'i> {
    table: &'a DeTable<'i>,
    /// Dotted path of the table (`""` for the document).
    path: String,
    /// Span of its header or inline table; `None` for the document itself.
    span: Option<Range<usize>>,
    /// Every key this section knows, read or not (for unknown keys and suggestions).
    known: Vec<&'static str>,
}

impl<'a, 'i> Section<'a, 'i> {
    /// The document's top-level table.
    pub(crate) fn root(table: &'a DeTable<'i>) -> Self {
        Self {
            table,
            path: String::new(),
            span: None,
            known: Vec::new(),
        }
    }

    /// Dotted path of this table.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Span of this table's header, for problems about the table as a whole.
    pub(crate) fn span(&self) -> Option<&Range<usize>> {
        self.span.as_ref()
    }

    /// Dotted path of one of its keys; a key that is not a bare TOML key is quoted, so the
    /// path stays unambiguous (`server."a.b"`).
    pub(crate) fn key(&self, name: &str) -> String {
        let bare = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let name = if bare {
            name.to_owned()
        } else {
            format!("{name:?}")
        };
        if self.path.is_empty() {
            name
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The raw value of `name`, marking the key as known.
    pub(crate) fn raw(&mut self, name: &'static str) -> Option<&'a Value<'i>> {
        self.known.push(name);
        self.table.get(name)
    }

    /// Converts `name` when present; records the problem and gives `None` when the value is
    /// unusable, `None` also when absent.
    pub(crate) fn get<T>(
        &mut self,
        cx: &mut Ctx,
        name: &'static str,
        convert: impl FnOnce(&DeValue<'i>) -> Result<T, Problem>,
    ) -> Option<T> {
        let value = self.raw(name)?;
        match convert(value.get_ref()) {
            Ok(v) => Some(v),
            Err(problem) => {
                cx.error(self.key(name), Some(&value.span()), problem);
                None
            }
        }
    }

    /// Like [`Section::get`], with the value's span.
    pub(crate) fn get_spanned<T>(
        &mut self,
        cx: &mut Ctx,
        name: &'static str,
        convert: impl FnOnce(&DeValue<'i>) -> Result<T, Problem>,
    ) -> Option<(T, Range<usize>)> {
        let value = self.raw(name)?;
        match convert(value.get_ref()) {
            Ok(v) => Some((v, value.span())),
            Err(problem) => {
                cx.error(self.key(name), Some(&value.span()), problem);
                None
            }
        }
    }

    /// Overwrites `field` (holding the default) with the converted value when present and
    /// usable.
    pub(crate) fn set<T>(
        &mut self,
        cx: &mut Ctx,
        name: &'static str,
        field: &mut T,
        convert: impl FnOnce(&DeValue<'i>) -> Result<T, Problem>,
    ) {
        if let Some(value) = self.get(cx, name, convert) {
            *field = value;
        }
    }

    /// The sub-table `name` (a `[a.b]` header, a dotted key or an inline table); a problem
    /// when it is something else.
    pub(crate) fn table(&mut self, cx: &mut Ctx, name: &'static str) -> Option<Section<'a, 'i>> {
        let value = self.raw(name)?;
        match value.get_ref() {
            DeValue::Table(table) => Some(Section {
                table,
                path: self.key(name),
                span: Some(value.span()),
                known: Vec::new(),
            }),
            other => {
                cx.error(
                    self.key(name),
                    Some(&value.span()),
                    Problem::WrongType {
                        expected: "a table".to_owned(),
                        found: describe(other, false),
                    },
                );
                None
            }
        }
    }

    /// The array of tables `name` (`[[name]]` headers or an array of inline tables); the
    /// entries that are not tables are problems and left out.
    pub(crate) fn tables(&mut self, cx: &mut Ctx, name: &'static str) -> Vec<Section<'a, 'i>> {
        let Some(value) = self.raw(name) else {
            return Vec::new();
        };
        let key = self.key(name);
        let DeValue::Array(items) = value.get_ref() else {
            cx.error(
                key,
                Some(&value.span()),
                Problem::WrongType {
                    expected: format!("an array of tables ([[{name}]])"),
                    found: describe(value.get_ref(), false),
                },
            );
            return Vec::new();
        };
        let mut sections = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let path = format!("{key}[{index}]");
            match item.get_ref() {
                DeValue::Table(table) => sections.push(Section {
                    table,
                    path,
                    span: Some(item.span()),
                    known: Vec::new(),
                }),
                other => cx.error(
                    path,
                    Some(&item.span()),
                    Problem::WrongType {
                        expected: "a table".to_owned(),
                        found: describe(other, false),
                    },
                ),
            }
        }
        sections
    }

    /// All entries of the table, marking none as known (for free-form tables).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a str, &'a Value<'i>)> + use<'a, 'i> {
        self.table.iter().map(|(k, v)| (k.get_ref().as_ref(), v))
    }

    /// Reports the keys that were never looked up, with a suggestion when one known key is
    /// close.
    pub(crate) fn finish(self, cx: &mut Ctx) {
        for (key, _) in self.table.iter() {
            let name: &str = key.get_ref();
            if !self.known.contains(&name) {
                cx.error(
                    self.key(name),
                    Some(&key.span()),
                    Problem::UnknownKey {
                        suggestion: suggest(name, &self.known).map(str::to_owned),
                    },
                );
            }
        }
    }
}

/// How a value is shown in a problem: the value itself (a string quoted and cut short), or only
/// its type for a secret.
pub(crate) fn describe(value: &DeValue<'_>, secret: bool) -> String {
    match value {
        DeValue::String(_) if secret => "a string".to_owned(),
        DeValue::String(s) => {
            const MAX: usize = 60;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("{cut:?}...")
            } else {
                format!("{s:?}")
            }
        }
        DeValue::Integer(_) if secret => "an integer".to_owned(),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(_) if secret => "a float".to_owned(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(_) => "a date-time".to_owned(),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// The known key closest to `name`, if close enough to be a typo: at most a third of the
/// longer name's characters differ (and at most 3).
pub(crate) fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let name_lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&name_lower, k), *k))
        .filter(|&(d, k)| {
            let longer = name.chars().count().max(k.chars().count());
            k != name && d <= 3 && d * 3 <= longer.max(3)
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let cx = Ctx::new("a\nbb\n\nc", false);
        assert_eq!(cx.line_of(0), 1);
        assert_eq!(cx.line_of(1), 1);
        assert_eq!(cx.line_of(2), 2);
        assert_eq!(cx.line_of(5), 3);
        assert_eq!(cx.line_of(6), 4);
    }

    #[test]
    fn suggestions_are_for_typos_only() {
        let known = ["listen", "metrics_listen", "body_limit", "shutdown_grace"];
        assert_eq!(suggest("lisen", &known), Some("listen"));
        assert_eq!(suggest("Listen", &known), Some("listen"));
        assert_eq!(suggest("body_limt", &known), Some("body_limit"));
        assert_eq!(suggest("port", &known), None);
        assert_eq!(suggest("x", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}

//! Message templates: the name is unique within the organization, and `variables` is always
//! the list of `{{placeholders}}` in the body, derived by the store.

use crate::error::Result;
use crate::keys::{self, space};
use crate::messages::{Page, PageRequest};
use crate::model::{Id, Millis, Template};
use crate::{Store, now_ms};

use super::{
    Record, clean_name, create_op, delete_op, invalid, list, load, record_fields, update_op,
};

/// Longest template body, in bytes (a long multipart message is well under this).
const MAX_BODY: usize = 8 * 1024;

/// The distinct `{{name}}` placeholders of a body, in order of first use (`{{name|default}}`
/// names `name`).
pub(crate) fn placeholders(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else {
            break;
        };
        let inner = &rest[..end];
        let name = inner.split_once('|').map_or(inner, |(name, _)| name).trim();
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
            && !out.iter().any(|v| v == name)
        {
            out.push(name.to_owned());
        }
        rest = &rest[end + 2..];
    }
    out
}

impl Record for Template {
    const ENTITY: &'static str = "template";
    const SPACE: u8 = space::TEMPLATE;

    record_fields!();

    fn validate(&mut self) -> Result<()> {
        self.name = clean_name("name", &self.name)?;
        if self.body.trim().is_empty() {
            return Err(invalid("body", "is required"));
        }
        if self.body.len() > MAX_BODY {
            return Err(invalid("body", format!("is longer than {MAX_BODY} bytes")));
        }
        self.variables = placeholders(&self.body);
        Ok(())
    }

    fn unique_key(&self) -> Option<(Vec<u8>, String)> {
        Some((
            keys::unique(space::TEMPLATE_BY_NAME, self.organization_id, &self.name),
            format!("name {}", self.name),
        ))
    }
}

impl Store {
    /// Creates a template; the store assigns `id`, times and `variables`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) when the organization has a
    /// template of that name; [`StoreError::Invalid`](crate::StoreError::Invalid) for a missing
    /// name or body; storage errors.
    pub async fn create_template(&self, template: Template) -> Result<Template> {
        self.writer()
            .run(move |ctx| create_op(ctx, None, template, now_ms()))
            .await
    }

    /// A template of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), also for another organization's.
    pub fn template(&self, org: Id, id: Id) -> Result<Template> {
        load(self.kv(), None, org, id)
    }

    /// Changes a template; a new name moves its unique entry in the same batch.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound),
    /// [`StoreError::Conflict`](crate::StoreError::Conflict), validation errors, or what
    /// `change` returns.
    pub async fn update_template(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut Template) -> Result<()> + Send + 'static,
    ) -> Result<Template> {
        self.writer()
            .run(move |ctx| update_op(ctx, None, org, id, now_ms(), change))
            .await
    }

    /// Deletes a template.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), storage errors.
    pub async fn delete_template(&self, org: Id, id: Id) -> Result<Template> {
        self.writer()
            .run(move |ctx| delete_op(ctx, None, org, id, |_, _, _: &Template| Ok(())))
            .await
    }

    /// The organization's templates, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_templates(&self, org: Id, page: PageRequest) -> Result<Page<Template>> {
        list(self.kv(), None, org, page, None)
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_distinct_and_in_order() {
        assert_eq!(
            placeholders(
                "Dear {{name}}, {{ amount }} due {{date}}; {{name}} {{}} {{bad name}} {{school|our school}} {{x"
            ),
            vec!["name", "amount", "date", "school"]
        );
    }
}

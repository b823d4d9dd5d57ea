//! Compliance rules that more than one sender applies: the API's send path and the campaign
//! runner ask the same question here, so the two can never disagree on it.

use sairex_store::model::{Id, Priority, Template, TemplateCategory};

/// The stable error code of a [`DltRefusal`], as the API answers it (422).
pub const DLT_TEMPLATE_NOT_APPROVED: &str = "DLT_TEMPLATE_NOT_APPROVED";

/// DLT refused a template for a transactional send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "template {template} must be approved and carry a dltTemplateId for a transactional send \
     (DLT is enabled for this organization)"
)]
pub struct DltRefusal {
    /// The template refused.
    pub template: Id,
}

/// DLT (blueprint §6.4): when the organization has DLT enabled, a transactional send bound to
/// a template (the template's category is TRANSACTIONAL, or the send goes out at
/// transactional priority) needs that template approved and registered (a non-blank
/// `dltTemplateId`). Sends not bound to a template, and promotional or OTP templates sent at
/// another priority, are not subject to it.
///
/// # Errors
/// [`DltRefusal`] when the rule applies and the template does not meet it.
pub fn check_dlt(
    dlt_enabled: bool,
    template: &Template,
    priority: Priority,
) -> Result<(), DltRefusal> {
    let transactional =
        template.category == TemplateCategory::Transactional || priority == Priority::TRANSACTIONAL;
    if !dlt_enabled || !transactional {
        return Ok(());
    }
    let registered = template
        .dlt_template_id
        .as_deref()
        .is_some_and(|id| !id.trim().is_empty());
    if template.is_approved && registered {
        Ok(())
    } else {
        Err(DltRefusal {
            template: template.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(category: TemplateCategory, approved: bool, dlt: Option<&str>) -> Template {
        Template {
            id: 9,
            category,
            is_approved: approved,
            dlt_template_id: dlt.map(str::to_owned),
            ..Template::default()
        }
    }

    #[test]
    fn transactional_templates_need_approval_and_registration_only_under_dlt() {
        use TemplateCategory::{Otp, Promotional, Transactional};
        let bulk = Priority::BULK;
        let ready = template(Transactional, true, Some("1107161234567890123"));
        assert_eq!(check_dlt(true, &ready, bulk), Ok(()));
        for bad in [
            template(Transactional, false, Some("1107161234567890123")),
            template(Transactional, true, None),
            template(Transactional, true, Some("  ")),
        ] {
            assert_eq!(
                check_dlt(true, &bad, bulk),
                Err(DltRefusal { template: 9 }),
                "{bad:?}"
            );
            assert_eq!(check_dlt(false, &bad, bulk), Ok(()), "DLT off");
        }
        // A promotional template is bound only when it goes out at transactional priority.
        let promo = template(Promotional, false, None);
        assert_eq!(check_dlt(true, &promo, bulk), Ok(()));
        assert!(check_dlt(true, &promo, Priority::TRANSACTIONAL).is_err());
        assert_eq!(
            check_dlt(true, &template(Otp, false, None), Priority::OTP),
            Ok(())
        );
    }
}

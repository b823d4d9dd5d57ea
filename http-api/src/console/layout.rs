//! The page shell: head, navigation of blueprint §5.1, the user's menu; and small helpers
//! that turn the API's JSON answers into HTML.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::Console;

/// Navigation entries: (path, label, admin only).
const NAV: [(&str, &str, bool); 10] = [
    ("/console/", "Dashboard", false),
    ("/console/inbox", "Inbox", false),
    ("/console/send", "Send message", false),
    ("/console/campaigns", "Campaigns", false),
    ("/console/contacts", "Contacts", false),
    ("/console/templates", "Templates", false),
    ("/console/messages", "Messages", false),
    ("/console/reports", "Reports", false),
    ("/console/settings", "Settings", true),
    ("/console/settings/users", "Users", true),
];

pub(super) fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Sairex SMS" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page without navigation (login, errors before login).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { (body) }
        }
    }
}

/// A page inside the shell; `active` is the navigation path to highlight.
pub(crate) fn shell(console: &Console, active: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-csrf=(console.csrf) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Sairex SMS" }
                    span.org { (console.org_name) }
                    span.user { (console.user.name) " (" (role(console)) ")" }
                    form.logout method="post" action="/console/logout" {
                        input type="hidden" name="_csrf" value=(console.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                nav aria-label="Main" {
                    ul {
                        @for (path, label, admin_only) in NAV {
                            @if !admin_only || console.is_admin() {
                                li {
                                    a href=(path) aria-current=[(path == active).then_some("page")] {
                                        (label)
                                        @if path == "/console/inbox" { " " span.badge #inbox-badge hidden { "0" } }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    (body)
                }
                div #toast role="status" aria-live="polite" {}
            }
        }
    }
}

fn role(console: &Console) -> &'static str {
    if console.is_admin() {
        "admin"
    } else {
        "member"
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf(console: &Console) -> Markup {
    html! { input type="hidden" name="_csrf" value=(console.csrf); }
}

/// A JSON value as text ("" for null).
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A time from the API (RFC 3339) in the organization's zone, the exact value in
/// `datetime`; as given when it is no time.
pub(crate) fn when(v: &Value, zone: &jiff::tz::TimeZone) -> Markup {
    let raw = text(v);
    match crate::time::parse(&raw) {
        Some(ms) => html! { time datetime=(raw) { (crate::zone::display(ms, zone)) } },
        None => html! { (raw) },
    }
}

/// A status pill; `data-message-id` lets the live stream update it in place.
pub(crate) fn status_pill(status: &str, message_id: Option<u64>) -> Markup {
    html! {
        span class={ "pill " (status.to_ascii_lowercase()) } data-message-id=[message_id] { (status) }
    }
}

/// A notice above a form's page: (is error, text).
pub(crate) fn notice(notice: Option<&(bool, String)>) -> Markup {
    html! {
        @if let Some((error, text)) = notice {
            @if *error { p.error role="alert" { (text) } } @else { p.ok role="status" { (text) } }
        }
    }
}

/// A server-rendered line chart of the daily sent / delivered / failed counts (oldest first).
pub(crate) fn trend_chart(days: &[(String, u64, u64, u64)]) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    let max = days
        .iter()
        .map(|d| d.1.max(d.2).max(d.3))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = days.len().max(2) as f64 - 1.0;
    let coords = |pick: fn(&(String, u64, u64, u64)) -> u64| -> Vec<(f64, f64)> {
        days.iter()
            .enumerate()
            .map(|(i, d)| {
                let x = if days.len() == 1 {
                    W / 2.0
                } else {
                    i as f64 * W / n
                };
                (x, H - pick(d) as f64 * (H - 10.0) / max)
            })
            .collect()
    };
    let points = |pick: fn(&(String, u64, u64, u64)) -> u64| -> String {
        coords(pick)
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    type Pick = fn(&(String, u64, u64, u64)) -> u64;
    let series: [(&str, &str, Pick); 3] = [
        ("sent", "#1f5fbf", |d| d.1),
        ("delivered", "#1a7f37", |d| d.2),
        ("failed", "#c62828", |d| d.3),
    ];
    let label = format!(
        "Delivery trend over {} days: {} sent, {} delivered, {} failed",
        days.len(),
        days.iter().map(|d| d.1).sum::<u64>(),
        days.iter().map(|d| d.2).sum::<u64>(),
        days.iter().map(|d| d.3).sum::<u64>()
    );
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label) preserveAspectRatio="none" {
            title { (label) }
            line x1="0" y1=(H) x2=(W) y2=(H) stroke="#999" {}
            @for (class, colour, pick) in series {
                polyline class=(class) fill="none" points=(points(pick)) {}
                // Dots, so a single day (or a flat line) still shows.
                @for (x, y) in coords(pick) {
                    circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" fill=(colour) {}
                }
            }
        }
        p.legend {
            span.sent { "■ sent" } " " span.delivered { "■ delivered" } " " span.failed { "■ failed" }
        }
    }
}

/// Text shown right-to-left when it starts with a right-to-left script (Urdu, Arabic, Hebrew).
pub(crate) fn dir_of(text: &str) -> &'static str {
    let rtl = text
        .chars()
        .find(|c| c.is_alphabetic())
        .is_some_and(|c| matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF));
    if rtl { "rtl" } else { "auto" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_chart_plots_each_series_and_says_its_totals() {
        let days = vec![
            ("2026-03-01".to_owned(), 10, 8, 1),
            ("2026-03-02".to_owned(), 20, 19, 0),
        ];
        let svg = trend_chart(&days).into_string();
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("2 days: 30 sent, 27 delivered, 1 failed"));
        // The highest value reaches the top margin; zero sits on the axis.
        assert!(svg.contains(r#"points="0.0,85.0 600.0,10.0""#), "{svg}");
        assert!(
            svg.contains("600.0,160.0"),
            "failed 0 on day 2 is on the axis"
        );
        assert_eq!(dir_of("سلام دنیا"), "rtl");
        assert_eq!(dir_of("Hello"), "auto");
    }
}

//! One list shape for every list endpoint: `{"items": [...], "nextCursor": "…" | null,
//! "limit": n, "total": n}`.
//!
//! Every list is in id order, newest first. A cursor names the last item a page returned (and
//! where it was, as a hint): the next page is the items after that id, so items created
//! between two requests never shift a page or repeat an item, and deleted ones never make it
//! skip one. The cursor is opaque to clients (base64url). `limit` is 1 to [`MAX_LIMIT`]
//! (default 50). `page` (from 1) still works during the transition; it cannot be combined with
//! a cursor.
//!
//! The store pages by offset, counting the total as it goes; the cursor's position hint lets
//! the next page start with one read in the usual case. When the list changed in between, the
//! position of the first item below the cursor's id is found by a galloping then binary search
//! (a few reads, however many items were created meanwhile).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sairex_store::model::Id;
use sairex_store::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Largest `limit`.
pub(crate) const MAX_LIMIT: u32 = sairex_store::MAX_PAGE;
/// `limit` when none is given.
const DEFAULT_LIMIT: u32 = 50;

/// The paging parameters every list takes (flattened into each list's own query).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListParams {
    /// `nextCursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Items per page, 1 to [`MAX_LIMIT`].
    pub(crate) limit: Option<u32>,
    /// Deprecated: page number from 1 (offset paging; not stable under inserts).
    pub(crate) page: Option<u64>,
}

/// A checked request for one page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListRequest {
    limit: u32,
    start: Start,
}

#[derive(Debug, Clone, Copy)]
enum Start {
    /// From an offset (the first page, or `page=`).
    Offset(u64),
    /// After the item with this id, which was at position `hint - 1`.
    After { id: Id, hint: u64 },
}

impl ListParams {
    /// Checks the parameters.
    pub(crate) fn request(&self) -> Result<ListRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::invalid(format!("limit: 1 to {MAX_LIMIT}")));
        }
        let start = match (&self.cursor, self.page) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "cursor and page: give one (page is deprecated; use nextCursor)",
                ));
            }
            (Some(cursor), None) => decode(cursor)?,
            (None, Some(0)) => return Err(ApiError::invalid("page: starts at 1")),
            (None, Some(page)) => Start::Offset((page - 1).saturating_mul(u64::from(limit))),
            (None, None) => Start::Offset(0),
        };
        Ok(ListRequest { limit, start })
    }
}

fn encode(id: Id, hint: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{id}:{hint}"))
}

fn decode(cursor: &str) -> Result<Start, ApiError> {
    let bad = || ApiError::invalid("cursor: not a nextCursor this API gave");
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    let mut parts = text.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(id), Some(hint), None) => Ok(Start::After {
            id: id.parse().map_err(|_| bad())?,
            hint: hint.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// One page, in the shape every list answers with.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listed<T> {
    pub(crate) items: Vec<T>,
    /// The next page's `cursor`; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
    pub(crate) limit: u32,
    /// How many items the list has in all.
    pub(crate) total: u64,
}

impl<T> Listed<T> {
    /// The same page with every item turned into its view.
    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
            limit: self.limit,
            total: self.total,
        }
    }
}

/// One page of a list read by offset with `read` (newest first, ids strictly decreasing), as
/// `request` asks. `id` names an item.
pub(crate) fn fetch<T, E>(
    request: ListRequest,
    mut read: impl FnMut(PageRequest) -> Result<Page<T>, E>,
    id: impl Fn(&T) -> Id,
) -> Result<Listed<T>, E> {
    let limit = request.limit;
    let wanted = limit as usize;
    let (items, first_position, total) = match request.start {
        Start::Offset(offset) => {
            let page = read(PageRequest { offset, limit })?;
            (page.items, offset, page.total)
        }
        Start::After { id: after, hint } => {
            // Usually nothing changed before the cursor: its item is still at `hint - 1`.
            let base = hint.saturating_sub(1);
            let window = limit.saturating_add(1).min(MAX_LIMIT);
            let page = read(PageRequest {
                offset: base,
                limit: window,
            })?;
            if page.items.first().map(&id) == Some(after) {
                let items: Vec<T> = page.items.into_iter().skip(1).take(wanted).collect();
                (items, base + 1, page.total)
            } else {
                // Items were created or deleted before it: find where the items below the
                // cursor begin (ids decrease along the list, so "id below the cursor, or the
                // end" is false then true), galloping from the hint, then halving.
                let mut below = |offset: u64| -> Result<bool, E> {
                    let probe = read(PageRequest { offset, limit: 1 })?;
                    Ok(probe.items.first().is_none_or(|it| id(it) < after))
                };
                let (mut lo, mut hi);
                if below(base)? {
                    hi = base;
                    lo = 0;
                    let mut step = 1u64;
                    while hi > 0 {
                        let at = hi.saturating_sub(step);
                        if below(at)? {
                            hi = at;
                            step = step.saturating_mul(2);
                        } else {
                            lo = at + 1;
                            break;
                        }
                    }
                } else {
                    lo = base + 1;
                    let mut step = 1u64;
                    loop {
                        let at = base.saturating_add(step);
                        if below(at)? {
                            hi = at;
                            break;
                        }
                        lo = at + 1;
                        step = step.saturating_mul(2);
                    }
                }
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if below(mid)? {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                let page = read(PageRequest { offset: lo, limit })?;
                (page.items, lo, page.total)
            }
        }
    };
    let after_last = first_position + items.len() as u64;
    let next_cursor = match items.last() {
        Some(last) if items.len() == limit as usize && after_last < total => {
            Some(encode(id(last), after_last))
        }
        _ => None,
    };
    Ok(Listed {
        items,
        next_cursor,
        limit,
        total,
    })
}

/// [`fetch`] over a list already in memory (small sets: SMPP accounts), sorted newest first
/// here.
pub(crate) fn from_vec<T: Clone>(
    request: ListRequest,
    mut all: Vec<T>,
    id: impl Fn(&T) -> Id,
) -> Listed<T> {
    all.sort_by_key(|it| std::cmp::Reverse(id(it)));
    let total = all.len() as u64;
    let read = |page: PageRequest| -> Result<Page<T>, std::convert::Infallible> {
        let start = usize::try_from(page.offset)
            .unwrap_or(usize::MAX)
            .min(all.len());
        let end = start.saturating_add(page.limit as usize).min(all.len());
        Ok(Page {
            items: all[start..end].to_vec(),
            total,
            offset: page.offset,
            limit: page.limit,
        })
    };
    match fetch(request, read, &id) {
        Ok(listed) => listed,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(cursor: Option<String>, limit: u32) -> ListRequest {
        ListParams {
            cursor,
            limit: Some(limit),
            page: None,
        }
        .request()
        .unwrap()
    }

    fn ids(l: &Listed<Id>) -> Vec<Id> {
        l.items.clone()
    }

    #[test]
    fn cursors_survive_inserts_and_deletes() {
        let mut list: Vec<Id> = (1..=10).collect();
        let first = from_vec(params(None, 3), list.clone(), |i| *i);
        assert_eq!(ids(&first), [10, 9, 8]);
        assert_eq!(first.total, 10);
        // Two new items, and 9 deleted: the next page still starts after 8.
        list.extend([11, 12]);
        list.retain(|i| *i != 9);
        let second = from_vec(params(first.next_cursor.clone(), 3), list.clone(), |i| *i);
        assert_eq!(ids(&second), [7, 6, 5]);
        // Many deletions before the cursor: found by reading back.
        list.retain(|i| *i < 3 || *i > 7 || *i == 5);
        let third = from_vec(params(second.next_cursor.clone(), 3), list.clone(), |i| *i);
        assert_eq!(ids(&third), [2, 1]);
        assert_eq!(third.next_cursor, None);
        // Many inserts: found by reading on.
        let mut big: Vec<Id> = (1..=10).collect();
        let page = from_vec(params(None, 2), big.clone(), |i| *i);
        big.extend(11..=500);
        let next = from_vec(params(page.next_cursor, 2), big, |i| *i);
        assert_eq!(ids(&next), [8, 7]);
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |p: ListParams| p.request().unwrap_err().to_string();
        assert!(
            bad(ListParams {
                limit: Some(1001),
                ..ListParams::default()
            })
            .contains("limit")
        );
        assert!(
            bad(ListParams {
                cursor: Some("x".into()),
                ..ListParams::default()
            })
            .contains("cursor")
        );
        assert!(
            bad(ListParams {
                cursor: Some(encode(1, 1)),
                page: Some(2),
                ..ListParams::default()
            })
            .contains("page")
        );
    }
}

//! Multipart messages accepted in pieces: what a resend carries, which part a receipt is for,
//! and how the timeline names parts. Pure helpers over the store's [`PartialSend`].

use sairex_pdu::receipt::ids_match;
use sairex_store::model::{Id, Message, PartialSend};

use crate::provider::Resume;

/// Why a partly sent message asks the provider of its first parts first (for the timeline).
pub(crate) const TOOK_THE_FIRST_PARTS: &str = "it took the first parts";

/// What a resend of a partly accepted message hands the provider: the reference and the
/// accepted parts' ids in their places.
pub(crate) fn resume_of(partial: &PartialSend) -> Resume {
    let total = usize::try_from(partial.total).unwrap_or(0);
    let mut ids = vec![None; total];
    for part in &partial.accepted {
        if let Some(slot) = usize::try_from(part.index)
            .ok()
            .and_then(|i| ids.get_mut(i))
        {
            *slot = Some(part.provider_msg_id.clone());
        }
    }
    Resume {
        reference: partial.reference,
        ids,
    }
}

/// How many parts the message has: its ids once accepted whole, else the part count of the
/// pieces accepted so far (0 when neither is known).
pub(crate) fn part_count(m: &Message) -> usize {
    let partial = m
        .partial
        .as_ref()
        .map_or(0, |p| usize::try_from(p.total).unwrap_or(0));
    m.provider_msg_ids.len().max(partial)
}

/// Every id a part of the message was given, to confirm a receipt's match.
pub(crate) fn part_ids(m: &Message) -> impl Iterator<Item = &String> {
    m.provider_msg_ids
        .iter()
        .chain(m.provider_msg_id.iter())
        .chain(
            m.partial
                .iter()
                .flat_map(|p| p.accepted.iter().map(|a| &a.provider_msg_id)),
        )
}

/// Which part (from 0) a receipt from `provider` naming `receipt_id` is for. Of a message sent
/// in pieces through several providers, only the parts that provider accepted count: two
/// SMSCs may well hand out the same id.
pub(crate) fn part_of(m: &Message, provider: Id, receipt_id: &str) -> Option<usize> {
    let Some(partial) = &m.partial else {
        return m
            .provider_msg_ids
            .iter()
            .position(|p| ids_match(p, receipt_id));
    };
    let through = |index: usize| {
        u32::try_from(index)
            .ok()
            .and_then(|i| partial.part(i))
            .map_or(m.provider_id, |part| Some(part.provider_id))
    };
    m.provider_msg_ids
        .iter()
        .enumerate()
        .position(|(i, p)| through(i) == Some(provider) && ids_match(p, receipt_id))
        .or_else(|| {
            partial
                .accepted
                .iter()
                .find(|a| a.provider_id == provider && ids_match(&a.provider_msg_id, receipt_id))
                .and_then(|a| usize::try_from(a.index).ok())
        })
}

/// "part 1", "parts 2 and 3", "parts 1, 2 and 4": 0-based indexes named from 1.
pub(crate) fn phrase(indexes: &[u32]) -> String {
    let named: Vec<String> = indexes
        .iter()
        .map(|i| i.saturating_add(1).to_string())
        .collect();
    match named.as_slice() {
        [] => "no part".to_owned(),
        [one] => format!("part {one}"),
        [init @ .., last] => format!("parts {} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sairex_store::model::AcceptedPart;

    fn partial() -> PartialSend {
        PartialSend {
            total: 3,
            reference: 42,
            layout: "smpp/udh8/auto/unpacked".into(),
            provider_id: 5,
            accepted: vec![AcceptedPart {
                index: 0,
                provider_id: 5,
                provider_msg_id: "7".into(),
            }],
        }
    }

    #[test]
    fn a_resend_carries_the_reference_and_the_accepted_ids_in_place() {
        let resume = resume_of(&partial());
        assert_eq!(resume.reference, 42);
        assert_eq!(resume.ids, vec![Some("7".to_owned()), None, None]);
    }

    #[test]
    fn a_receipt_is_for_the_part_its_provider_accepted() {
        let mut m = Message {
            partial: Some(partial()),
            ..Message::default()
        };
        assert_eq!(part_count(&m), 3, "known before the rest is accepted");
        assert_eq!(part_of(&m, 5, "7"), Some(0));
        assert_eq!(part_of(&m, 6, "7"), None, "another SMSC's id 7");

        // The rest accepted through provider 6, which happened to give part 3 the id 7 too.
        m.provider_id = Some(6);
        m.provider_msg_ids = vec!["7".into(), "8".into(), "7".into()];
        assert_eq!(part_of(&m, 5, "7"), Some(0));
        assert_eq!(part_of(&m, 6, "7"), Some(2));
        assert_eq!(part_of(&m, 6, "0008"), Some(1), "ids still match padded");
        assert!(part_ids(&m).any(|id| id == "8"));

        let whole = Message {
            provider_id: Some(6),
            provider_msg_ids: vec!["a".into(), "b".into()],
            ..Message::default()
        };
        assert_eq!((part_count(&whole), part_of(&whole, 6, "b")), (2, Some(1)));
    }

    #[test]
    fn parts_are_named_from_one() {
        assert_eq!(phrase(&[0]), "part 1");
        assert_eq!(phrase(&[1, 2]), "parts 2 and 3");
        assert_eq!(phrase(&[0, 1, 3]), "parts 1, 2 and 4");
        assert_eq!(phrase(&[]), "no part");
    }
}

//! Model-based test (sled's `prop_tree_matches_btreemap`, with a restart op): random
//! sequences of enqueue, lease, ack, retry, requeue, partial acceptance, finalize, due
//! promotion and reopen are applied to the store and to a few in-memory maps, and after every
//! op the lease order, ready counts, in-flight sets, statuses, audit trails, due times and
//! recorded parts must agree, and `check_consistency` must be clean.
//!
//! 64 cases of up to 40 ops by default; raise with `PROPTEST_CASES=2000`. A shrunk failure
//! goes into `regression.rs` as a named test with a postmortem.

mod common;

use common::{Op, Pick, Sched, run};
use proptest::prelude::*;
use sairex_store::model::MessageStatus;

fn pick() -> impl Strategy<Value = Pick> {
    (prop::bool::weighted(0.8), 0usize..64).prop_map(|(in_flight, index)| Pick { in_flight, index })
}

fn op() -> impl Strategy<Value = Op> {
    let org = 1..=common::ORGS;
    prop_oneof![
        6 => (
            org.clone(),
            prop::sample::select(vec![1u8, 5, 10]),
            prop::option::weighted(0.25, 0u8..4),
            prop_oneof![
                6 => Just(Sched::Now),
                1 => Just(Sched::Past),
                2 => (0u64..100).prop_map(Sched::Future),
            ],
        )
            .prop_map(|(org, priority, idempotency_key, sched)| Op::Enqueue {
                org,
                priority,
                idempotency_key,
                sched,
            }),
        4 => (org, 0usize..5).prop_map(|(org, max)| Op::Lease { org, max }),
        3 => pick().prop_map(Op::Ack),
        2 => (pick(), 0u64..60).prop_map(|(pick, delay)| Op::Retry { pick, delay }),
        2 => pick().prop_map(Op::Requeue),
        2 => pick().prop_map(Op::AcceptParts),
        2 => (
            pick(),
            prop::sample::select(vec![
                MessageStatus::Delivered,
                MessageStatus::Failed,
                MessageStatus::Rejected,
                MessageStatus::Expired,
            ]),
        )
            .prop_map(|(pick, status)| Op::Finalize { pick, status }),
        2 => (0u64..60, 1usize..5).prop_map(|(advance, max)| Op::PromoteDue { advance, max }),
        1 => Just(Op::Reopen),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}

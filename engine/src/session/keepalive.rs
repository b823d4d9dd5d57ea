//! enquire_link policy (SMPP 3.4 §4.11): when to send one, and when a missing answer means the
//! connection is dead. Pure: time is passed in.
//!
//! The link counts as idle when nothing has been *received* for the interval: our own writes
//! prove nothing about the path back. Only one enquire_link is outstanding at a time; if its
//! response (or anything that names its sequence number, such as a generic_nack) has not come
//! within the response timeout, the connection is dead.

use tokio::time::{Duration, Instant};

/// What the session should do about keepalive now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing.
    Wait,
    /// The link has been idle for the interval: send an enquire_link.
    SendEnquireLink,
    /// An enquire_link went unanswered for the response timeout: the connection is dead.
    Dead,
}

/// Keepalive state of one connection.
#[derive(Debug, Clone)]
pub struct Keepalive {
    interval: Duration,
    timeout: Duration,
    last_received: Instant,
    /// Sequence number and deadline of the enquire_link awaiting its response.
    outstanding: Option<(u32, Instant)>,
}

impl Keepalive {
    /// A connection that was last heard from at `now`.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            interval,
            timeout,
            last_received: now,
            outstanding: None,
        }
    }

    /// Starts over for a new connection established at `now`.
    pub fn reset(&mut self, now: Instant) {
        self.last_received = now;
        self.outstanding = None;
    }

    /// Anything was received at `now`.
    pub fn on_received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// An enquire_link with `sequence` was sent at `now`.
    pub fn on_sent(&mut self, sequence: u32, now: Instant) {
        self.outstanding = Some((sequence, now + self.timeout));
    }

    /// A response (enquire_link_resp or generic_nack) to `sequence` arrived; `true` if it
    /// answered the outstanding enquire_link.
    pub fn on_response(&mut self, sequence: u32) -> bool {
        match self.outstanding {
            Some((s, _)) if s == sequence => {
                self.outstanding = None;
                true
            }
            _ => false,
        }
    }

    /// Whether an enquire_link is awaiting its response (it occupies a window slot).
    pub fn is_outstanding(&self) -> bool {
        self.outstanding.is_some()
    }

    /// What to do at `now`.
    pub fn poll(&self, now: Instant) -> KeepaliveAction {
        match self.outstanding {
            Some((_, deadline)) if deadline <= now => KeepaliveAction::Dead,
            Some(_) => KeepaliveAction::Wait,
            None if now.saturating_duration_since(self.last_received) >= self.interval => {
                KeepaliveAction::SendEnquireLink
            }
            None => KeepaliveAction::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_when_idle_and_declares_death_when_unanswered() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut k = Keepalive::new(s(30), s(10), t0);
        assert_eq!(k.poll(t0 + s(29)), KeepaliveAction::Wait);
        k.on_received(t0 + s(20));
        assert_eq!(
            k.poll(t0 + s(49)),
            KeepaliveAction::Wait,
            "traffic defers it"
        );
        assert_eq!(k.poll(t0 + s(50)), KeepaliveAction::SendEnquireLink);
        k.on_sent(7, t0 + s(50));
        assert!(k.is_outstanding());
        assert_eq!(
            k.poll(t0 + s(59)),
            KeepaliveAction::Wait,
            "only one at a time"
        );
        assert_eq!(k.poll(t0 + s(60)), KeepaliveAction::Dead);
        assert!(!k.on_response(8), "another sequence answers nothing");
        assert!(k.on_response(7));
        assert!(!k.is_outstanding());
        k.reset(t0 + s(100));
        assert_eq!(k.poll(t0 + s(100)), KeepaliveAction::Wait);
    }
}

use keebai_protocol::{PairingCodeEvent, QrEvent, StreamEvent};

/// The replayable state of one session. Only what a subscriber may still need is kept: the current
/// offer to the phone (a QR, or once asked for, a pairing code; older ones are stale and
/// useless), `connecting` once the phone scanned or typed the code, and the terminal event. Every
/// event gets the next id, so ids increase within a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    last_id: u64,
    /// A `qr` or a `pairing_code` event.
    offer: Option<(u64, StreamEvent)>,
    connecting: Option<u64>,
    terminal: Option<(u64, StreamEvent)>,
}

impl SessionState {
    /// Records an event and returns its id. Nothing is recorded after a terminal event.
    pub fn push(&mut self, event: StreamEvent) -> Option<u64> {
        if self.terminal.is_some() {
            return None;
        }
        self.last_id += 1;
        let id = self.last_id;
        match event {
            offer @ (StreamEvent::Qr(_) | StreamEvent::PairingCode(_)) => {
                self.offer = Some((id, offer));
            }
            StreamEvent::Connecting => self.connecting = Some(id),
            terminal => self.terminal = Some((id, terminal)),
        }
        Some(id)
    }

    /// Records an event that the session's owner numbered `id` (cluster mode: another server
    /// runs the session and this one replays its events). Events apply strictly in order: an id
    /// already applied changes nothing, and `false` says that `id` is beyond the next one (fetch
    /// the ones between first).
    pub fn apply(&mut self, id: u64, event: StreamEvent) -> bool {
        if id <= self.last_id || self.terminal.is_some() {
            return true;
        }
        if id != self.last_id + 1 {
            return false;
        }
        self.push(event);
        true
    }

    pub fn is_terminal(&self) -> bool {
        self.terminal.is_some()
    }

    pub fn terminal(&self) -> Option<&StreamEvent> {
        self.terminal.as_ref().map(|(_, e)| e)
    }

    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// What the phone may act on right now: the live QR or pairing code.
    fn live_offer(&self) -> Option<(u64, &StreamEvent)> {
        match (&self.offer, self.connecting, &self.terminal) {
            (Some((id, offer)), None, None) => Some((*id, offer)),
            _ => None,
        }
    }

    /// The QR that a phone may scan right now, if any.
    pub fn live_qr(&self) -> Option<&QrEvent> {
        match self.live_offer() {
            Some((_, StreamEvent::Qr(qr))) => Some(qr),
            _ => None,
        }
    }

    /// The pairing code that the phone may type right now, if any.
    pub fn live_code(&self) -> Option<&PairingCodeEvent> {
        match self.live_offer() {
            Some((_, StreamEvent::PairingCode(code))) => Some(code),
            _ => None,
        }
    }

    /// What a subscriber that has seen every event up to `after` is sent, oldest first.
    ///
    /// `None` is a new subscriber: it gets only the current state (the live QR, or `connecting`,
    /// or the terminal event), never a history. A resuming subscriber (`Last-Event-ID`) gets every
    /// event it missed except stale QRs. An `after` beyond the last id (a client that talked to
    /// another session or server) counts as new.
    pub fn events_for(&self, after: Option<u64>) -> Vec<(u64, StreamEvent)> {
        let after = after.filter(|after| *after <= self.last_id);
        let Some(after) = after else {
            return self.current().into_iter().collect();
        };
        let mut out = Vec::new();
        if let Some((id, offer)) = self.live_offer()
            && id > after
        {
            out.push((id, offer.clone()));
        }
        if let Some(id) = self.connecting.filter(|id| *id > after) {
            out.push((id, StreamEvent::Connecting));
        }
        if let Some((id, event)) = self.terminal.as_ref().filter(|(id, _)| *id > after) {
            out.push((*id, event.clone()));
        }
        out
    }

    fn current(&self) -> Option<(u64, StreamEvent)> {
        if let Some((id, event)) = &self.terminal {
            return Some((*id, event.clone()));
        }
        if let Some(id) = self.connecting {
            return Some((id, StreamEvent::Connecting));
        }
        self.offer.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keebai_protocol::{ConnectedEvent, FailedEvent, FailureCode};

    fn qr(n: u32) -> StreamEvent {
        StreamEvent::Qr(QrEvent { data: format!("qr{n}"), expires_at: Some("t".into()) })
    }

    fn connected() -> StreamEvent {
        StreamEvent::Connected(ConnectedEvent {
            channel_id: "ch_x".into(),
            phone_number: "+56912345678".into(),
            push_name: "Lucio".into(),
        })
    }

    #[test]
    fn ids_increase_with_every_event() {
        let mut state = SessionState::default();
        assert_eq!(state.push(qr(1)), Some(1));
        assert_eq!(state.push(qr(2)), Some(2));
        assert_eq!(state.push(StreamEvent::Connecting), Some(3));
        assert_eq!(state.push(connected()), Some(4));
        assert_eq!(state.last_id(), 4);
    }

    #[test]
    fn nothing_is_recorded_after_a_terminal_event() {
        let mut state = SessionState::default();
        state.push(connected());
        assert_eq!(state.push(qr(9)), None);
        assert_eq!(state.terminal(), Some(&connected()));
    }

    #[test]
    fn a_new_subscriber_gets_only_the_current_state() {
        let mut state = SessionState::default();
        assert!(state.events_for(None).is_empty());
        state.push(qr(1));
        state.push(qr(2));
        assert_eq!(state.events_for(None), vec![(2, qr(2))]);
        state.push(StreamEvent::Connecting);
        assert_eq!(state.events_for(None), vec![(3, StreamEvent::Connecting)]);
        state.push(connected());
        assert_eq!(state.events_for(None), vec![(4, connected())]);
    }

    #[test]
    fn a_resuming_subscriber_gets_what_it_missed_but_no_stale_qr() {
        let mut state = SessionState::default();
        state.push(qr(1));
        state.push(qr(2));
        state.push(qr(3));
        assert_eq!(state.events_for(Some(1)), vec![(3, qr(3))]);
        assert!(state.events_for(Some(3)).is_empty());
        state.push(StreamEvent::Connecting);
        state.push(connected());
        assert_eq!(state.events_for(Some(3)), vec![(4, StreamEvent::Connecting), (5, connected())]);
        assert_eq!(state.events_for(Some(4)), vec![(5, connected())]);
        assert!(state.events_for(Some(5)).is_empty());
    }

    #[test]
    fn a_last_event_id_from_the_future_counts_as_a_new_subscriber() {
        let mut state = SessionState::default();
        state.push(qr(1));
        assert_eq!(state.events_for(Some(99)), vec![(1, qr(1))]);
    }

    #[test]
    fn a_replica_applies_events_once_and_in_order() {
        let mut owner = SessionState::default();
        let mut replica = SessionState::default();
        let events = [qr(1), qr(2), StreamEvent::Connecting, connected()];
        let ids: Vec<u64> = events.iter().map(|e| owner.push(e.clone()).unwrap()).collect();
        assert!(!replica.apply(ids[1], events[1].clone()), "a gap is refused");
        assert_eq!(replica.last_id(), 0);
        for (id, event) in ids.iter().zip(&events) {
            assert!(replica.apply(*id, event.clone()));
            assert!(replica.apply(*id, event.clone()), "a repeat is harmless");
        }
        assert_eq!(replica, owner);
        assert_eq!(replica.events_for(Some(1)), owner.events_for(Some(1)));
    }

    #[test]
    fn a_pairing_code_replaces_the_qr_and_replays_like_it() {
        let mut state = SessionState::default();
        state.push(qr(1));
        let code = StreamEvent::PairingCode(PairingCodeEvent {
            code: "ABCD-EFGH".into(),
            phone_number: "+56912345678".into(),
            expires_at: "t".into(),
        });
        assert_eq!(state.push(code.clone()), Some(2));
        assert_eq!(state.live_qr(), None, "the QR is no longer offered");
        assert_eq!(state.live_code().map(|c| c.code.as_str()), Some("ABCD-EFGH"));
        assert_eq!(state.events_for(None), vec![(2, code.clone())]);
        assert_eq!(state.events_for(Some(1)), vec![(2, code)]);
        state.push(StreamEvent::Connecting);
        assert_eq!(state.live_code(), None);
    }

    #[test]
    fn an_expired_session_offers_no_qr() {
        let mut state = SessionState::default();
        state.push(qr(1));
        let failed =
            StreamEvent::Failed(FailedEvent { code: FailureCode::Expired, reason: "r".into() });
        state.push(failed.clone());
        assert_eq!(state.live_qr(), None);
        assert_eq!(state.events_for(Some(0)), vec![(2, failed)]);
    }
}

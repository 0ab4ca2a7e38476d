//! A session's event stream read with a real SSE parser (`eventsource-stream`), each event
//! parsed by its name into the protocol's [`StreamEvent`].

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::stream::BoxStream;
use keebai_protocol::StreamEvent;

/// How long a test waits for any one event before it fails instead of hanging.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a Server-Sent Events response: `(id, event)` pairs, then the end of the stream.
pub struct SseReader {
    events: BoxStream<'static, Result<eventsource_stream::Event, String>>,
}

impl SseReader {
    /// Reads `response`'s body; the caller has checked its status.
    pub fn new(response: reqwest::Response) -> Self {
        let events =
            response.bytes_stream().eventsource().map(|r| r.map_err(|e| e.to_string())).boxed();
        Self { events }
    }

    /// The next event with its id, or `None` once the server closed the stream. Panics after
    /// [`EVENT_TIMEOUT`].
    pub async fn next(&mut self) -> Option<(u64, StreamEvent)> {
        self.next_within(EVENT_TIMEOUT).await
    }

    /// Like [`SseReader::next`], waiting up to `within` instead.
    pub async fn next_within(&mut self, within: Duration) -> Option<(u64, StreamEvent)> {
        let event = tokio::time::timeout(within, self.events.next())
            .await
            .unwrap_or_else(|_| panic!("an event (or the end of the stream) within {within:?}"))?
            .expect("a well-formed SSE stream");
        let id = event.id.parse().expect("a decimal event id");
        let parsed = StreamEvent::parse(&event.event, &event.data)
            .unwrap_or_else(|e| panic!("a known event: {e} ({:?}: {})", event.event, event.data));
        Some((id, parsed))
    }

    /// The next event, which must come.
    pub async fn next_event(&mut self) -> StreamEvent {
        self.next().await.expect("another event").1
    }

    /// The next event, which must be a `qr`: its payload.
    pub async fn next_qr(&mut self) -> String {
        match self.next_event().await {
            StreamEvent::Qr(qr) => qr.data,
            other => panic!("expected a QR, got {other:?}"),
        }
    }

    /// Every event up to the end of the stream (each within [`EVENT_TIMEOUT`]).
    pub async fn rest(&mut self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        while let Some((_, event)) = self.next().await {
            events.push(event);
        }
        events
    }

    /// Asserts that the server closed the stream.
    pub async fn assert_closed(&mut self) {
        assert!(self.next().await.is_none(), "the stream should be closed");
    }
}

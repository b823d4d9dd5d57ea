//! An incremental Server-Sent Events parser (the `text/event-stream` format of the HTML
//! standard): fed chunks as they arrive, it yields each complete event.

/// The longest line kept: a longer one (no real event is that big) is dropped, so a broken
/// stream cannot grow the buffer without bound.
const MAX_LINE: usize = 1 << 20;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `message` when there was none.
    pub event: String,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The line was too long: skip to its end.
    skipping: bool,
    /// The last byte was a CR (a CRLF may be split between chunks).
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; `on_event` gets each event it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(SseEvent)) {
        for &b in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    self.end_line(&mut on_event);
                }
                _ if self.skipping => {}
                _ if self.line.len() >= MAX_LINE => {
                    self.line.clear();
                    self.skipping = true;
                }
                _ => self.line.push(b),
            }
        }
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(SseEvent)) {
        if std::mem::replace(&mut self.skipping, false) {
            self.line.clear();
            return;
        }
        if self.line.is_empty() {
            // A blank line dispatches the event, if it has data.
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if std::mem::replace(&mut self.has_data, false) {
                let event = if event.is_empty() {
                    "message".to_owned()
                } else {
                    event
                };
                on_event(SseEvent { event, data });
            }
            return;
        }
        let line = String::from_utf8_lossy(&self.line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            // A comment (keep-alive).
            "" => {}
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // id and retry do not matter to a load test; unknown fields are ignored.
            _ => {}
        }
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_chunks(stream: &[u8], chunk: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for part in stream.chunks(chunk) {
            parser.feed(part, |e| events.push(e));
        }
        events
    }

    #[test]
    fn events_whatever_the_chunking() {
        let stream = b": keep-alive\n\nevent: message.status\ndata: {\"messageId\":1}\n\n\
            event:lagged\r\ndata:{\"missed\":3}\r\n\r\ndata: a\ndata: b\nid: 7\n\n\
            event: empty\n\n";
        let want = vec![
            SseEvent {
                event: "message.status".into(),
                data: "{\"messageId\":1}".into(),
            },
            SseEvent {
                event: "lagged".into(),
                data: "{\"missed\":3}".into(),
            },
            SseEvent {
                event: "message".into(),
                data: "a\nb".into(),
            },
        ];
        for chunk in [1, 2, 3, 7, stream.len()] {
            assert_eq!(parse_in_chunks(stream, chunk), want, "chunks of {chunk}");
        }
    }

    #[test]
    fn an_unfinished_event_waits_for_its_blank_line() {
        let mut parser = SseParser::new();
        let mut n = 0;
        parser.feed(b"event: x\ndata: 1\n", |_| n += 1);
        assert_eq!(n, 0);
        parser.feed(b"\n", |_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn an_oversized_line_is_dropped_and_parsing_goes_on() {
        let mut stream = b"data: ".to_vec();
        stream.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        stream.extend_from_slice(b"\n\nevent: ok\ndata: 1\n\n");
        let events = parse_in_chunks(&stream, 4096);
        assert_eq!(
            events,
            [SseEvent {
                event: "ok".into(),
                data: "1".into()
            }]
        );
    }
}

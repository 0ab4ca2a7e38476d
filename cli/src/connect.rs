//! `keebai whatsapp connect --qr` (or `--phone +56…`): start a session, show each QR (or the
//! pairing code to type on the phone), follow it to its end.
//!
//! Three ways to show it:
//! - a terminal: the QR is drawn black on white and redrawn in place when it rotates, with a
//!   status line counting down the code and the session;
//! - a pipe: each QR is appended, with when it expires;
//! - `--json`: one JSON object per line: `{"event":"session",…}` first, then
//!   `{"event":"qr"|"connecting"|…,"id":N,"data":{…}}` exactly as the stream sent it.
//!
//! A dropped connection is resumed with `Last-Event-ID`; Ctrl-C cancels the session on the
//! server before exiting.

use std::io::Write;
use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use keebai_protocol::{ConnectResponse, FailureCode, StreamEvent};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::api::{Api, ApiError};
use crate::args::ConnectArgs;
use crate::exit::Exit;
use crate::render;

/// The terminal event is replayable this long after the session ends: keep trying to resume
/// until then.
const REPLAY: Duration = Duration::from_secs(60);
const CANCEL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tty,
    Plain,
    Json,
}

/// Everything printed for one session.
struct View {
    mode: Mode,
    session_ends: Instant,
    code_expires: Option<OffsetDateTime>,
    /// Lines of the current QR block above the status line (TTY redraws move up over them).
    drawn: usize,
    /// Whether the cursor is at the end of an unterminated status line.
    status_open: bool,
}

fn clock(d: Duration) -> String {
    format!("{}:{:02}", d.as_secs() / 60, d.as_secs() % 60)
}

impl View {
    fn print(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Ends an open status line so the next output starts on a fresh line.
    fn close_status(&mut self) {
        if self.status_open {
            self.print("\n");
            self.status_open = false;
        }
    }

    fn json(&mut self, value: serde_json::Value) {
        self.print(&format!("{value}\n"));
    }

    fn session(&mut self, session: &ConnectResponse) {
        if self.mode == Mode::Json {
            self.json(json!({
                "event": "session",
                "session_id": session.session_id,
                "stream_url": session.stream_url,
                "expires_in": session.expires_in,
            }));
        }
    }

    fn status(&self) -> String {
        let now = OffsetDateTime::now_utc();
        let code = self.code_expires.map(|at| (at - now).whole_seconds().max(0)).unwrap_or(0);
        let session = self.session_ends.saturating_duration_since(Instant::now());
        format!("Code refreshes in {code} s · session ends in {}", clock(session))
    }

    fn tick(&mut self) {
        if self.mode == Mode::Tty && self.status_open {
            let status = self.status();
            self.print(&format!("\r\x1b[2K{status}"));
        }
    }

    fn qr(&mut self, data: &str, expires_at: Option<&str>) -> Result<(), String> {
        self.code_expires = expires_at.and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok());
        let lines = render::qr_lines(data).map_err(|e| format!("cannot draw this QR code: {e}"))?;
        let header = "Scan with WhatsApp on your phone: Settings › Linked devices › Link a device";
        match self.mode {
            Mode::Tty => {
                let mut text = String::new();
                if self.drawn > 0 {
                    // Back to the top of the previous block, and clear it.
                    text.push_str(&format!("\r\x1b[{}A\x1b[J", self.drawn));
                }
                text.push_str(header);
                text.push('\n');
                for line in render::on_paper(&lines) {
                    text.push_str(&line);
                    text.push('\n');
                }
                text.push_str(&self.status());
                self.drawn = lines.len() + 1;
                self.status_open = true;
                self.print(&text);
            }
            Mode::Plain => {
                let session = clock(self.session_ends.saturating_duration_since(Instant::now()));
                let until = expires_at.unwrap_or("its next refresh");
                self.print(&format!(
                    "{header}\n{}\nThis code is valid until {until}; the session ends in {session}.\n",
                    lines.join("\n")
                ));
            }
            // JSON mode prints each event as it came (in `event`).
            Mode::Json => {}
        }
        Ok(())
    }

    /// Shows one event; returns how the command ends when the event is terminal.
    fn event(&mut self, id: u64, event: StreamEvent) -> Option<Exit> {
        if self.mode == Mode::Json {
            let data: serde_json::Value =
                serde_json::from_str(&event.data_json()).unwrap_or_default();
            self.json(json!({"event": event.name().as_str(), "id": id, "data": data}));
        }
        match event {
            StreamEvent::Qr(qr) => {
                if self.mode != Mode::Json
                    && let Err(error) = self.qr(&qr.data, qr.expires_at.as_deref())
                {
                    eprintln!("error: {error}");
                }
                None
            }
            StreamEvent::PairingCode(code) => {
                if self.mode != Mode::Json {
                    self.close_status();
                    self.print(&format!(
                        "Pairing code for {}: {}\nOn that phone: WhatsApp > Linked devices > Link a device > Link with phone number instead, then type the code. It is valid until {}.\n",
                        code.phone_number, code.code, code.expires_at
                    ));
                    self.drawn = 0;
                }
                None
            }
            StreamEvent::Connecting => {
                if self.mode != Mode::Json {
                    if self.status_open {
                        self.print("\r\x1b[2K");
                        self.status_open = false;
                    }
                    self.print("Scanned. Linking your phone…\n");
                }
                None
            }
            StreamEvent::Connected(channel) => {
                self.close_status();
                if self.mode != Mode::Json {
                    let push = if channel.push_name.is_empty() {
                        String::new()
                    } else {
                        format!(", as {}", channel.push_name)
                    };
                    self.print(&format!(
                        "Channel {} connected (phone {}{push}).\n",
                        channel.channel_id, channel.phone_number
                    ));
                }
                Some(Exit::Ok)
            }
            StreamEvent::Failed(failed) => {
                self.close_status();
                eprintln!("Pairing failed ({}): {}", failed.code.as_str(), failed.reason);
                Some(if failed.code == FailureCode::Expired { Exit::Expired } else { Exit::Failed })
            }
            StreamEvent::Disconnected(disconnected) => {
                self.close_status();
                eprintln!("Disconnected ({}): {}", disconnected.code.as_str(), disconnected.reason);
                Some(Exit::Disconnected)
            }
        }
    }

    fn notice(&mut self, text: &str) {
        self.close_status();
        eprintln!("{text}");
        // A notice breaks the block: the next QR is drawn below it rather than over it.
        self.drawn = 0;
    }
}

/// Runs the command to its end.
pub async fn run(api: &Api, args: ConnectArgs, tty: bool) -> Exit {
    let mode = if args.json {
        Mode::Json
    } else if tty {
        Mode::Tty
    } else {
        Mode::Plain
    };
    let session = match api.connect(args.name).await {
        Ok(session) => session,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Error;
        }
    };
    let mut view = View {
        mode,
        session_ends: Instant::now() + Duration::from_secs(session.expires_in),
        code_expires: None,
        drawn: 0,
        status_open: false,
    };
    view.session(&session);
    if let Some(phone) = args.phone {
        // The stream then shows the code (and each next one) instead of QR codes.
        if let Err(error) = api.pairing_code(&session.session_id, phone).await {
            eprintln!("error: {error}");
            let _ = api.cancel(&session.session_id).await;
            return Exit::Error;
        }
    }
    follow(api, &session, &mut view).await
}

async fn follow(api: &Api, session: &ConnectResponse, view: &mut View) -> Exit {
    let mut interrupt = pin!(tokio::signal::ctrl_c());
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last_id = None;
    let mut backoff = Duration::from_millis(250);
    let give_up = view.session_ends + REPLAY;
    loop {
        let opened = tokio::select! {
            opened = api.open_stream(&session.stream_url, last_id) => opened,
            _ = &mut interrupt => return cancel(api, session, view).await,
        };
        match opened {
            Ok(mut events) => loop {
                tokio::select! {
                    _ = &mut interrupt => return cancel(api, session, view).await,
                    _ = ticker.tick() => view.tick(),
                    item = events.next() => match item {
                        Some(Ok((id, event))) => {
                            last_id = Some(id);
                            backoff = Duration::from_millis(250);
                            if let Some(exit) = view.event(id, event) {
                                return exit;
                            }
                        }
                        // Dropped before a terminal event: resume below.
                        Some(Err(_)) | None => break,
                    },
                }
            },
            Err(error) if error.is_not_found() => {
                view.notice(
                    "The pairing session was lost (the server may have restarted). \
                     Run `keebai whatsapp connect --qr` again to start a new one.",
                );
                return Exit::Lost;
            }
            Err(error @ ApiError::Unreachable { .. }) if Instant::now() < give_up => {
                view.notice(&format!("{error}; retrying…"));
            }
            Err(error) => {
                view.notice(&format!("error: {error}"));
                return Exit::Error;
            }
        }
        if Instant::now() >= give_up {
            view.notice(&format!("error: lost the stream at {}", api.url_of(&session.stream_url)));
            return Exit::Error;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = &mut interrupt => return cancel(api, session, view).await,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn cancel(api: &Api, session: &ConnectResponse, view: &mut View) -> Exit {
    view.close_status();
    match tokio::time::timeout(CANCEL_TIMEOUT, api.cancel(&session.session_id)).await {
        Ok(Ok(())) => eprintln!("Cancelled the pairing session."),
        Ok(Err(error)) => eprintln!("Interrupted; cancelling the session failed: {error}"),
        Err(_) => eprintln!("Interrupted; the server did not confirm the cancel in time."),
    }
    Exit::Interrupted
}

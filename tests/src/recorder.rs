//! A recording HTTP/1.1 proxy: the browser talks to the server only through it, and it keeps
//! every byte of every exchange (request line, headers and body; status, headers and body,
//! streamed bodies as they flow) so a test can search the whole conversation.
//!
//! It forwards requests without `Accept-Encoding`, so the server answers uncompressed and the
//! transcript holds the very text the browser reads (a token inside a gzip body would not show
//! up in a byte search). Compression itself is tested by the server's own tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ACCEPT_ENCODING, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = BoxBody<Bytes, hyper::Error>;
type Transcript = Arc<Mutex<Vec<u8>>>;

pub struct Recorder {
    pub address: SocketAddr,
    transcript: Transcript,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("an address");
        let transcript = Transcript::default();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let log = transcript.clone();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let live = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (client, log) = (client.clone(), log.clone());
                let service = hyper::service::service_fn(move |request| {
                    forward(request, upstream, client.clone(), log.clone())
                });
                let connection = tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                let mut live = live.lock().expect("the connections");
                live.retain(|c: &tokio::task::AbortHandle| !c.is_finished());
                live.push(connection.abort_handle());
            }
        });
        Self { address, transcript, connections, task }
    }

    /// Drops every open connection, as a network outage would (the browser sees its streams
    /// break and reconnects).
    pub fn cut(&self) {
        for connection in self.connections.lock().expect("the connections").drain(..) {
            connection.abort();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Everything both ways so far.
    pub fn transcript(&self) -> Vec<u8> {
        self.transcript.lock().expect("the transcript").clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request or status line with its headers, as text.
fn head(line: String, headers: &hyper::HeaderMap) -> Vec<u8> {
    let mut text = line;
    for (name, value) in headers {
        text.push_str(&format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes())));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    log: Transcript,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    parts.headers.remove(ACCEPT_ENCODING);
    {
        let mut log = log.lock().expect("the transcript");
        let line = format!("{} {} {:?}\r\n", parts.method, parts.uri, parts.version);
        log.extend(head(line, &parts.headers));
        log.extend(&body);
        log.extend(b"\r\n");
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    parts.uri = format!("http://{upstream}{path}").parse().expect("a URI");
    parts.headers.insert(HOST, upstream.to_string().parse().expect("a header value"));
    let response = match client.request(Request::from_parts(parts, Full::new(body))).await {
        Ok(response) => response,
        Err(_) => {
            let mut response =
                Response::new(Full::new(Bytes::new()).map_err(|n| match n {}).boxed());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            return Ok(response);
        }
    };
    let (parts, body) = response.into_parts();
    log.lock()
        .expect("the transcript")
        .extend(head(format!("{:?} {}\r\n", parts.version, parts.status), &parts.headers));
    let body = body
        .map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                log.lock().expect("the transcript").extend(data);
            }
            frame
        })
        .boxed();
    Ok(Response::from_parts(parts, body))
}

//! `GET /metrics` over HTTP/1.1, on the daemon's tokio runtime.
//!
//! Written by hand rather than on hyper: one path, one method, one response
//! per connection (`Connection: close`; Prometheus scrapes every 15 s or
//! more, so keeping connections alive saves nothing). Measured on a
//! current-thread runtime with the same tokio features, hyper 1 +
//! hyper-util + http-body-util (http1, server, minimal features) added
//! 258 KiB to a stripped release binary, about 0.2 MiB of RSS after 200
//! scrapes and 14 crates; this file adds no crate. What it needs to be safe
//! on a socket: a bounded request head, a deadline per connection, a cap on
//! connections at once, and no parsing beyond the request line.

use std::{future::Future, io, net::SocketAddr, pin::Pin, time::Duration};

use tokio::{
    io::AsyncWrite,
    net::{TcpListener, TcpStream},
    task::JoinSet,
    time::timeout,
};

use super::{Metrics, MetricsError, CONTENT_TYPE};

/// Longest request head (request line and headers) read; Prometheus sends
/// about 300 bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// A connection that has not been answered by then is dropped, so a client
/// that sends nothing cannot hold a slot.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once. A few Prometheus
/// replicas and a curl by hand fit.
const MAX_CONNECTIONS: usize = 8;

/// The metrics listener: bind, then serve until a shutdown signal.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port, see [`MetricsServer::local_addr`]).
    pub async fn bind(addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let bind_error = |source| MetricsError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(MetricsServer { listener, local_addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers scrapes until `shutdown` completes; then stops accepting,
    /// drops the connections still open and returns.
    pub async fn serve<F>(self, metrics: Metrics, shutdown: F)
    where
        F: Future<Output = ()>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut connections = JoinSet::new();
        let mut accept_failing = false;
        log::info!("serving metrics on http://{}/metrics", self.local_addr);
        loop {
            while connections.try_join_next().is_some() {}
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        accept_failing = false;
                        if connections.len() >= MAX_CONNECTIONS {
                            log::debug!("metrics: {MAX_CONNECTIONS} connections open, closing {peer}");
                            continue;
                        }
                        let metrics = metrics.clone();
                        connections.spawn(async move {
                            match timeout(CONNECTION_DEADLINE, answer(stream, &metrics)).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => log::debug!("metrics: {peer}: {e}"),
                                Err(_) => log::debug!("metrics: {peer}: no request in time"),
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: say it once,
                        // and do not spin on it.
                        if !accept_failing {
                            log::warn!("metrics: cannot accept connections: {e}");
                            accept_failing = true;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        connections.shutdown().await;
        log::debug!("metrics listener on {} stopped", self.local_addr);
    }
}

/// Reads one request head and writes one response.
async fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let response = loop {
        if head_complete(&head) {
            break respond(&head, metrics);
        }
        if head.len() >= MAX_REQUEST_HEAD {
            break plain(431, "Request Header Fields Too Large", &[], false);
        }
        stream.readable().await?;
        match stream.try_read(&mut buf) {
            // Closed before a whole request: nothing to answer.
            Ok(0) => return Ok(()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    let mut written = 0;
    while written < response.len() {
        stream.writable().await?;
        match stream.try_write(&response[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    // A FIN after the response (Connection: close).
    std::future::poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await
}

/// The head ends at the first empty line (RFC 9112 section 2.1; a bare LF
/// is accepted as a line end, section 2.2).
fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// The whole response to a request head.
fn respond(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let (method, path) = match request_line(head) {
        Ok(m) => m,
        Err(()) => return plain(400, "Bad Request", &[], false),
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return plain(405, "Method Not Allowed", &[("Allow", "GET, HEAD")], false);
    }
    if path != "/metrics" {
        return plain(404, "Not Found", &[], head_only);
    }
    match metrics.encode() {
        Ok(body) => response(200, "OK", CONTENT_TYPE, &[], body.as_bytes(), head_only),
        Err(e) => {
            log::error!("metrics: {e}");
            plain(500, "Internal Server Error", &[], head_only)
        }
    }
}

/// Method and path (without its query) of the request line: `method SP
/// request-target SP HTTP-version` (RFC 9112 section 3). Empty lines before
/// it are skipped (section 2.2).
fn request_line(head: &[u8]) -> Result<(&str, &str), ()> {
    let text = std::str::from_utf8(head).map_err(|_| ())?;
    let line = text.trim_start_matches(['\r', '\n']).lines().next().ok_or(())?;
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(());
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic());
    if !token(method) || !target.starts_with('/') || !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(());
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok((method, path))
}

/// A short text/plain response naming the status.
fn plain(code: u16, reason: &str, headers: &[(&str, &str)], head_only: bool) -> Vec<u8> {
    let body = format!("{code} {reason}\n");
    response(code, reason, "text/plain; charset=utf-8", headers, body.as_bytes(), head_only)
}

fn response(
    code: u16,
    reason: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{testing::ManualClock, KillLabels, MetricsOptions, Scope};
    use std::io::{Read, Write};
    use std::sync::Arc;

    #[test]
    fn request_line_gives_method_and_path_without_query() {
        assert_eq!(request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(("GET", "/metrics")));
        assert_eq!(request_line(b"\r\nHEAD /metrics?a=b HTTP/1.0\r\n\r\n"), Ok(("HEAD", "/metrics")));
        assert_eq!(request_line(b"GET /metrics HTTP/1.1\n\n"), Ok(("GET", "/metrics")));
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"G=T /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 x\r\n\r\n",
            b"\xff /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(request_line(bad), Err(()), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// One request over a real loopback connection; the raw response.
    async fn exchange(addr: SocketAddr, request: Vec<u8>) -> String {
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect to the listener");
            s.set_read_timeout(Some(Duration::from_secs(20))).expect("set a read timeout");
            s.write_all(&request).expect("send the request");
            let mut out = Vec::new();
            s.read_to_end(&mut out).expect("read the response to its end");
            String::from_utf8(out).expect("a UTF-8 response")
        })
        .await
        .expect("the client thread")
    }

    fn split(response: &str) -> (&str, &str, &str) {
        let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
        let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        (status, headers, body)
    }

    fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
        headers.split("\r\n").find_map(|h| {
            let (n, v) = h.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    #[tokio::test]
    async fn serves_metrics_on_loopback_and_stops() {
        let now = 1_900_000_000.0;
        let options =
            MetricsOptions { version: "9.9.9".into(), attach: "raw_tracepoint".into(), comm_label: false };
        let metrics = Metrics::with_clock(options, Arc::new(ManualClock::at(now)));
        let labels = KillLabels {
            namespace: "shop".into(),
            pod: "cart-7d9f".into(),
            container: "app".into(),
            scope: Scope::Container,
            ..KillLabels::default()
        };
        metrics.record_kill(&labels, now, Some(64 << 20));

        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).await.expect("bind");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(metrics.clone(), async {
            let _ = stopped.await;
        }));

        // A client that connects and sends nothing holds no one up.
        let idle = std::net::TcpStream::connect(addr).expect("an idle connection");

        let get = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()).await;
        let (status, headers, body) = split(&get);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(header(headers, "Content-Type"), Some(CONTENT_TYPE));
        assert_eq!(header(headers, "Content-Length"), Some(body.len().to_string().as_str()));
        assert!(
            body.contains("oomrecorder_build_info{version=\"9.9.9\",attach=\"raw_tracepoint\"} 1\n"),
            "{body}"
        );
        assert!(body.contains("pod=\"cart-7d9f\""), "{body}");

        let query = exchange(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n".to_vec()).await;
        assert_eq!(split(&query).0, "HTTP/1.1 200 OK");

        let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        let (status, headers, body) = split(&head);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "", "HEAD has no body");
        assert!(header(headers, "Content-Length").unwrap().parse::<usize>().unwrap() > 0);

        for (request, status) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], "HTTP/1.1 404 Not Found"),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
            (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
            (b"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        ] {
            let r = exchange(addr, request.to_vec()).await;
            assert_eq!(split(&r).0, status, "{}", String::from_utf8_lossy(request));
        }
        // Exactly the limit and no end of head: the server reads it all, so
        // closing leaves nothing unread (which would reset the connection).
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_REQUEST_HEAD, b'a');
        let r = exchange(addr, huge).await;
        assert_eq!(split(&r).0, "HTTP/1.1 431 Request Header Fields Too Large");

        stop.send(()).expect("the server is still running");
        timeout(Duration::from_secs(5), serving)
            .await
            .expect("serve returns after the shutdown signal")
            .expect("the serve task");
        drop(idle);
        assert!(std::net::TcpStream::connect(addr).is_err(), "the port is closed after shutdown");
    }

    #[tokio::test]
    async fn bind_error_names_the_address() {
        let first = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).await.expect("bind");
        let taken = first.local_addr();
        let err = MetricsServer::bind(taken).await.expect_err("the port is taken");
        assert!(err.to_string().contains(&taken.to_string()), "{err}");
    }
}

//! Connection limits and timeouts (README "Limits"): connections beyond
//! `server.max_connections` or `server.max_connections_per_address` are refused at once, and
//! HTTP/2 clients that send no request, half a request, or no answer to pings are closed.
//! The HTTP/2 clients are raw TLS sockets writing frames by hand, as an attacker would.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::Berth;
use crate::metrics::scrape_until;
use crate::tls::{TestCa, TlsFiles, start_https};

/// The client connection preface (RFC 9113 section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame types (RFC 9113 section 6).
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
/// Flags of a HEADERS frame.
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// Settings identifiers (RFC 9113 section 6.5.2).
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Far more than any timeout the tests configure, plus the server's grace after GOAWAY.
const CLOSED_WITHIN: Duration = Duration::from_secs(20);

/// One frame: length, type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// The HPACK block of `GET /v2/` (RFC 7541): `:method GET` and `:scheme https` from the
/// static table, `:path` and `:authority` as literals with indexed names, no Huffman coding.
fn get_v2(authority: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x87];
    for (name_index, value) in [(4u8, "/v2/"), (1, authority)] {
        block.push(name_index);
        block.push(u8::try_from(value.len()).unwrap());
        block.extend(value.as_bytes());
    }
    block
}

/// The preface, an empty SETTINGS frame and a HEADERS frame with `flags` carrying `block`.
fn opening(block: &[u8], flags: u8) -> Vec<u8> {
    [
        PREFACE,
        &frame(SETTINGS, 0, 0, &[]),
        &frame(HEADERS, flags, 1, block),
    ]
    .concat()
}

/// A TLS connection that negotiated HTTP/2 and then speaks only what the test writes.
struct RawH2 {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    received: Vec<u8>,
}

impl RawH2 {
    fn connect(ca: &TestCa, addr: SocketAddr) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
            .unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
        tls.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            tls,
            received: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    /// Reads (and never answers) what the server sends until it closes the connection or
    /// `within` has passed; returns whether it closed.
    fn closed_within(&mut self, within: Duration) -> bool {
        read_until_closed(&mut self.tls, &mut self.received, within)
    }

    /// The frames received so far: (type, stream, payload).
    fn frames(&self) -> Vec<(u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = &self.received[..];
        while rest.len() >= 9 {
            let len = usize::try_from(u32::from_be_bytes([0, rest[0], rest[1], rest[2]])).unwrap();
            if rest.len() < 9 + len {
                break;
            }
            let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
            out.push((rest[3], stream, rest[9..9 + len].to_vec()));
            rest = &rest[9 + len..];
        }
        out
    }

    /// A setting of the server's first SETTINGS frame.
    fn setting(&self, id: u16) -> Option<u32> {
        let frames = self.frames();
        let (_, _, payload) = frames.iter().find(|(kind, _, _)| *kind == SETTINGS)?;
        payload.chunks_exact(6).find_map(|s| {
            (u16::from_be_bytes([s[0], s[1]]) == id)
                .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
        })
    }

    fn got(&self, kind: u8, stream: u32) -> bool {
        self.frames()
            .iter()
            .any(|(k, s, _)| *k == kind && *s == stream)
    }
}

/// Reads from `stream` into `received` until the peer closes it (end of stream, reset, or
/// TCP closed under TLS) or `within` has passed; returns whether it closed. `stream` must
/// have a short read timeout.
fn read_until_closed(stream: &mut impl Read, received: &mut Vec<u8>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

// The raw clients block this test's thread; berth runs in its own process, so nothing here
// needs to run meanwhile.
#[tokio::test]
async fn http2_clients_that_send_no_whole_request_are_closed() {
    let ca = TestCa::new("berth test CA");
    let files = TlsFiles::new(&ca);
    let b = start_https(
        &ca,
        &files,
        &[
            ("BERTH_SERVER_HEADER_READ_TIMEOUT_SECS", "1"),
            // No pings: the header timeout alone must end these connections.
            ("BERTH_SERVER_HTTP2_KEEPALIVE_INTERVAL_SECS", "0"),
            ("BERTH_SERVER_HTTP2_MAX_CONCURRENT_STREAMS", "7"),
        ],
    );
    // TCP only: no TLS ClientHello.
    let mut no_tls = TcpStream::connect(b.addr).unwrap();
    no_tls
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // TLS, then not a byte of HTTP/2.
    let mut silent = RawH2::connect(&ca, b.addr);
    // The preface's magic string, without the SETTINGS frame that completes it.
    let mut magic = RawH2::connect(&ca, b.addr);
    magic.send(PREFACE);
    // A whole preface, then a request whose header block never ends: HEADERS without
    // END_HEADERS, and the CONTINUATION frame that should follow never sent.
    let mut half = RawH2::connect(&ca, b.addr);
    let block = get_v2(&b.host());
    half.send(&opening(&block[..block.len() / 2], END_STREAM));

    assert!(
        read_until_closed(&mut no_tls, &mut Vec::new(), CLOSED_WITHIN),
        "a connection without a TLS handshake stayed open"
    );
    for (what, client) in [
        ("silent", &mut silent),
        ("preface magic only", &mut magic),
        ("HEADERS without END_HEADERS", &mut half),
    ] {
        assert!(
            client.closed_within(CLOSED_WITHIN),
            "{what}: the connection stayed open"
        );
    }
    // The server announced its bounds: streams at once, and header bytes per request.
    assert_eq!(half.setting(MAX_CONCURRENT_STREAMS), Some(7));
    assert_eq!(half.setting(MAX_HEADER_LIST_SIZE), Some(16 * 1024));
    assert!(!half.got(HEADERS, 1), "the half request was answered");

    let m = scrape_until(&b, "the timed-out connections", |m| {
        m.get(
            "berth_connections_timed_out_total",
            &[("reason", "request_head")],
        ) == Some(3.0)
    })
    .await;
    assert_eq!(
        m.get(
            "berth_connections_timed_out_total",
            &[("reason", "tls_handshake")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get("berth_connections_timed_out_total", &[("reason", "idle")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn idle_http2_connections_and_unanswered_pings_are_closed() {
    let ca = TestCa::new("berth test CA");
    let files = TlsFiles::new(&ca);

    // A request served, then silence: closed at the idle timeout, with a GOAWAY.
    let b = start_https(
        &ca,
        &files,
        &[
            ("BERTH_SERVER_IDLE_TIMEOUT_SECS", "1"),
            ("BERTH_SERVER_HTTP2_KEEPALIVE_INTERVAL_SECS", "0"),
        ],
    );
    let mut idle = RawH2::connect(&ca, b.addr);
    idle.send(&opening(&get_v2(&b.host()), END_STREAM | END_HEADERS));
    assert!(
        idle.closed_within(CLOSED_WITHIN),
        "an idle connection stayed open"
    );
    assert!(idle.got(HEADERS, 1), "the request was not answered");
    assert!(idle.got(GOAWAY, 0), "closed without a GOAWAY");
    let m = scrape_until(&b, "the idle connection", |m| {
        m.get("berth_connections_timed_out_total", &[("reason", "idle")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        m.get(
            "berth_connections_timed_out_total",
            &[("reason", "request_head")]
        ),
        Some(0.0)
    );

    // With the idle timeout far away, a client that answers no ping is closed by the
    // keep-alive: pings every second, each unanswered for a second ends the connection.
    let b = start_https(
        &ca,
        &files,
        &[
            ("BERTH_SERVER_IDLE_TIMEOUT_SECS", "600"),
            ("BERTH_SERVER_HTTP2_KEEPALIVE_INTERVAL_SECS", "1"),
        ],
    );
    let mut deaf = RawH2::connect(&ca, b.addr);
    deaf.send(&opening(&get_v2(&b.host()), END_STREAM | END_HEADERS));
    assert!(
        deaf.closed_within(CLOSED_WITHIN),
        "a client answering no ping stayed connected"
    );
    assert!(deaf.got(HEADERS, 1), "the request was not answered");
    assert!(deaf.got(PING, 0), "no ping was sent");
}

/// A plain TCP connection to `addr` from the loopback address `from` (all of 127.0.0.0/8
/// is this machine, so each is another client address to the server).
pub(crate) async fn connect_from(from: [u8; 4], addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether `GET /healthz` is answered `200` on `s`, which stays open (kept alive).
async fn served(s: &mut tokio::net::TcpStream) -> bool {
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: berth\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    head.starts_with(b"HTTP/1.1 200 ")
}

/// What the server sends on `s`, a connection it refuses, before closing it.
async fn refusal(mut s: tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "a connection beyond the limits was kept open");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_beyond_the_limits_are_refused_at_once() {
    let b = Berth::start_with(&[
        ("BERTH_SERVER_MAX_CONNECTIONS", "4"),
        ("BERTH_SERVER_MAX_CONNECTIONS_PER_ADDRESS", "2"),
    ]);
    let (one, two, three) = ([127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(one, b.addr).await;
        assert!(served(&mut s).await);
        held.push(s);
    }
    // A third from the same address: a bare 503, then the connection closes.
    let refused = refusal(connect_from(one, b.addr).await).await;
    assert!(
        refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n")
            && refused.contains("Connection: close"),
        "{refused:?}"
    );
    // Another address has its own allowance, within the total.
    for _ in 0..2 {
        let mut s = connect_from(two, b.addr).await;
        assert!(served(&mut s).await);
        held.push(s);
    }
    let refused = refusal(connect_from(three, b.addr).await).await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused:?}");
    // The connections held are still served.
    for s in &mut held {
        assert!(served(s).await);
    }
    // A closed connection makes room (once the server has seen it close).
    drop(held.remove(0));
    let mut admitted = false;
    for _ in 0..50 {
        let mut s = connect_from(three, b.addr).await;
        if served(&mut s).await {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(admitted, "no room after a connection closed");

    // Every entry goes with its connections: only the scrape's own is left. The server sees
    // the closes when it next polls them, so the scrape may only start once there is room
    // (until then it would be one connection too many and get the 503 itself).
    drop(held);
    let mut room = false;
    for _ in 0..50 {
        // From an address of its own, so that only the total limit can refuse it.
        let mut s = connect_from([127, 0, 0, 4], b.addr).await;
        if served(&mut s).await {
            room = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(room, "no room after every connection closed");
    let m = scrape_until(&b, "the connections closing", |m| {
        m.get("berth_connections_open", &[]) == Some(1.0)
    })
    .await;
    assert_eq!(m.get("berth_connection_addresses", &[]), Some(1.0));
    let refused = |reason| {
        m.get("berth_connections_refused_total", &[("reason", reason)])
            .unwrap()
    };
    assert_eq!(refused("max_connections_per_address"), 1.0);
    assert!(refused("max_connections") >= 1.0);
    assert!(
        b.logs().contains("connection limit reached"),
        "the refusals were not logged"
    );
}

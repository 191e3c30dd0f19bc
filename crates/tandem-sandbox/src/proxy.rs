//! The policy proxy for a domain allowlist. It listens on a Unix socket that is bound into the
//! sandbox (whose network namespace is otherwise empty) and takes HTTP `CONNECT` and absolute-form
//! requests. IP literals and names not on the list are refused with 403, and so are names that
//! resolve to loopback, private or link-local addresses. Every decision is logged and kept.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{Error, Result};

/// Longest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;

/// One allowlist entry: `example.org` (that name) or `*.example.org` (its subdomains).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    suffix: bool,
    name: String,
}

impl Pattern {
    pub(crate) fn parse(text: &str) -> Result<Pattern> {
        let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let (suffix, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, lower),
        };
        let valid = !name.is_empty()
            && name.parse::<IpAddr>().is_err()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && name.contains(|c: char| c.is_ascii_alphabetic());
        if !valid {
            return Err(Error::Policy(format!(
                "`{text}` is not a domain pattern (`example.org` or `*.example.org`; no IP addresses)"
            )));
        }
        Ok(Pattern { suffix, name })
    }

    fn matches(&self, host: &str) -> bool {
        if self.suffix {
            host.strip_suffix(self.name.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1)
        } else {
            host == self.name
        }
    }
}

/// One proxy decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The host asked for, as sent.
    pub host: String,
    /// The port asked for.
    pub port: u16,
    /// Whether the connection was made.
    pub allowed: bool,
    /// Why.
    pub reason: String,
}

/// Resolves a host name to addresses.
pub type Resolver = Arc<dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync>;

struct Shared {
    patterns: Vec<Pattern>,
    resolver: Option<Resolver>,
    decisions: Mutex<Vec<Decision>>,
}

/// A running policy proxy; it stops accepting when dropped.
pub struct Proxy {
    dir: PathBuf,
    socket: PathBuf,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Starts a proxy allowing `domains`, on a Unix socket in a fresh private directory.
    pub fn start(domains: &[String]) -> Result<Proxy> {
        Proxy::start_with(domains, None)
    }

    /// The same with a custom resolver, whose answers are trusted as they are (tests map names to
    /// local servers with it).
    pub fn start_with(domains: &[String], resolver: Option<Resolver>) -> Result<Proxy> {
        let patterns = domains
            .iter()
            .map(|d| Pattern::parse(d))
            .collect::<Result<Vec<_>>>()?;
        let base = std::env::temp_dir().join(format!(
            "tandem-proxy-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir(&base)
            .map_err(crate::error::io(format!("creating {}", base.display())))?;
        std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(crate::error::io("setting proxy directory permissions"))?;
        let socket = base.join("proxy.sock");
        let listener = UnixListener::bind(&socket)
            .map_err(crate::error::io(format!("binding {}", socket.display())))?;
        let shared = Arc::new(Shared {
            patterns,
            resolver,
            decisions: Mutex::new(Vec::new()),
        });
        let serving = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tandem-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { break };
                    let shared = Arc::clone(&serving);
                    let _ = std::thread::Builder::new()
                        .name("tandem-proxy-conn".into())
                        .spawn(move || {
                            if let Err(err) = serve(&shared, conn) {
                                tracing::debug!(error = %err, "proxy connection ended");
                            }
                        });
                }
            })
            .map_err(crate::error::io("starting the proxy"))?;
        Ok(Proxy {
            dir: base,
            socket,
            shared,
        })
    }

    /// The Unix socket path on the host.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Every decision so far, in order.
    pub fn decisions(&self) -> Vec<Decision> {
        self.shared
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Unblock the accept loop, then clean up.
        let _ = UnixStream::connect(&self.socket);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(shared: &Shared, mut client: UnixStream) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if head.len() > MAX_HEAD {
            return reply(&mut client, 431, "request head too large");
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let connect = method.eq_ignore_ascii_case("CONNECT");
    let authority = if connect {
        Some(target.to_owned())
    } else {
        target
            .strip_prefix("http://")
            .map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
    };
    let Some(authority) = authority else {
        return reply(
            &mut client,
            400,
            "only CONNECT and absolute http:// requests",
        );
    };
    let (host, port) = split_authority(&authority, if connect { 443 } else { 80 });
    let decision = decide(shared, &host, port);
    let upstream = match decision {
        Ok(addrs) => TcpStream::connect(&addrs[..]).map_err(|e| format!("connect: {e}")),
        Err(reason) => Err(reason),
    };
    let allowed = upstream.is_ok();
    let reason = match &upstream {
        Ok(_) => "allowed".to_owned(),
        Err(reason) => reason.clone(),
    };
    tracing::info!(target: "tandem::sandbox::proxy", %host, port, allowed, %reason, "egress decision");
    shared
        .decisions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Decision {
            host: host.clone(),
            port,
            allowed,
            reason: reason.clone(),
        });
    let mut upstream = match upstream {
        Ok(stream) => stream,
        Err(reason) => return reply(&mut client, 403, &reason),
    };
    if connect {
        client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
        upstream.write_all(&head[end..])?;
    } else {
        upstream.write_all(&head)?;
    }
    client.set_read_timeout(None)?;
    pipe(client, upstream)
}

/// The host and port of `host:port`, `[v6]:port` or `host`.
fn split_authority(authority: &str, default: u16) -> (String, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').unwrap_or((rest, ""));
        let port = tail
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return (host.to_owned(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() => {
            (host.to_owned(), port.parse().unwrap_or(default))
        }
        _ => (authority.to_owned(), default),
    }
}

/// Addresses to connect to, or why not.
fn decide(shared: &Shared, host: &str, port: u16) -> std::result::Result<Vec<SocketAddr>, String> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    // IP literals in any spelling the resolver would accept (`127.1`, `2130706433`, `0x7f.1`).
    let numeric = !name.is_empty()
        && name
            .split('.')
            .all(|label| label.starts_with("0x") || label.bytes().all(|b| b.is_ascii_digit()));
    if name.parse::<IpAddr>().is_ok() || numeric || name.contains(':') {
        return Err(format!("IP literal `{host}` refused"));
    }
    if !shared.patterns.iter().any(|p| p.matches(&name)) {
        return Err(format!("`{host}` is not on the allowlist"));
    }
    let addrs = match &shared.resolver {
        Some(resolve) => resolve(&name, port).map_err(|e| format!("resolving `{host}`: {e}"))?,
        None => {
            let addrs: Vec<SocketAddr> = (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("resolving `{host}`: {e}"))?
                .collect();
            if let Some(bad) = addrs.iter().find(|a| internal(a.ip())) {
                return Err(format!(
                    "`{host}` resolves to internal address {}",
                    bad.ip()
                ));
            }
            addrs
        }
    };
    if addrs.is_empty() {
        return Err(format!("`{host}` has no addresses"));
    }
    Ok(addrs)
}

/// Loopback, private, link-local, unspecified and similar addresses.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| internal(IpAddr::V4(v4)))
        }
    }
}

fn reply(client: &mut UnixStream, status: u16, reason: &str) -> std::io::Result<()> {
    let text = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        _ => "Request Header Fields Too Large",
    };
    let body = format!("tandem sandbox proxy: {reason}\n");
    write!(
        client,
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Copies both ways until either side closes.
fn pipe(client: UnixStream, upstream: TcpStream) -> std::io::Result<()> {
    let (mut client_read, mut upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = std::io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// The in-sandbox end: listens on `127.0.0.1:port` in the sandbox's network namespace and forwards
/// each connection to the proxy's Unix socket. Runs in its own process, started by the helper
/// before it confines itself.
pub fn bridge(port: u16, socket: &Path, ready: impl FnOnce()) -> Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(crate::error::io(
        format!("bridge listening on 127.0.0.1:{port}"),
    ))?;
    ready();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let socket = socket.to_owned();
        std::thread::spawn(move || {
            if let Ok(proxy) = UnixStream::connect(&socket) {
                let _ = pipe_tcp(conn, proxy);
            }
        });
    }
    Ok(())
}

fn pipe_tcp(tcp: std::net::TcpStream, unix: UnixStream) -> std::io::Result<()> {
    let (mut tcp_read, mut unix_write) = (tcp.try_clone()?, unix.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut tcp_read, &mut unix_write);
        let _ = unix_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut unix_read, mut tcp_write) = (unix, tcp);
    let _ = std::io::copy(&mut unix_read, &mut tcp_write);
    let _ = tcp_write.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Pattern, split_authority};

    #[test]
    fn patterns_match_names_and_subdomains() {
        let exact = Pattern::parse("Registry.npmjs.org.").unwrap();
        assert!(exact.matches("registry.npmjs.org"));
        assert!(!exact.matches("evil-registry.npmjs.org"));
        let sub = Pattern::parse("*.crates.io").unwrap();
        assert!(sub.matches("static.crates.io"));
        assert!(!sub.matches("crates.io"));
        assert!(!sub.matches("evilcrates.io"));
        for bad in ["127.0.0.1", "::1", "", "*.", "exa mple.org", "10.0.0.1"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn authorities_split() {
        assert_eq!(split_authority("a.org:8443", 443), ("a.org".into(), 8443));
        assert_eq!(split_authority("a.org", 80), ("a.org".into(), 80));
        assert_eq!(split_authority("[::1]:22", 443), ("::1".into(), 22));
    }
}

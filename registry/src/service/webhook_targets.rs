//! Where organizations' webhooks may send: public addresses only, unless the operator says
//! otherwise.
//!
//! An organization owner chooses their hook's URL, and the server, not the owner, makes the
//! request: without a check, an owner could aim berth at its own loopback services, the
//! cloud's metadata endpoint (169.254.169.254) or anything else on the private network the
//! server sits in, and read the answers' status codes in the delivery log (server-side request
//! forgery). So an organization's hook is refused when its host is, or resolves to, an address
//! of a special-purpose range (loopback, private, link-local, shared, unique local,
//! multicast, ...), unless `[webhooks] org_allow_targets` names that host or range; and
//! always when `org_deny_targets` does.
//!
//! The check runs when a hook is saved (for a clear error) and again at every attempt, on
//! the addresses the connection will actually use: the client resolves names through
//! [`GuardedResolver`], which drops refused addresses, so a name that changes what it
//! resolves to after it was saved (DNS rebinding) gains nothing. The instance's own hooks
//! (`[[webhooks.hook]]`) are the operator's and are not restricted.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// One entry of `org_allow_targets` or `org_deny_targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRule {
    /// A host name, matched exactly (case-insensitive, without a trailing dot): everything
    /// it resolves to.
    Host(String),
    /// An address or a CIDR range.
    Net(IpNet),
}

impl TargetRule {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `fd00::/8`, `::1` or a host name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self::Net(net.trunc()));
        }
        if let Ok(ip) = s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Self::Net(IpNet::from(ip)));
        }
        let host = normal_host(s);
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid && !host.contains('/') {
            Ok(Self::Host(host))
        } else {
            Err(format!(
                "{s:?} is neither a host name, an IP address nor a CIDR range"
            ))
        }
    }

    fn matches(&self, host: &str, ip: IpAddr) -> bool {
        match self {
            Self::Host(h) => *h == normal_host(host),
            Self::Net(net) => net.contains(&canonical(ip)),
        }
    }
}

/// A host name as compared: lower case, no trailing dot, no IPv6 brackets.
fn normal_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// An IPv6 address that carries an IPv4 one (mapped `::ffff:a.b.c.d`, or NAT64
/// `64:ff9b::a.b.c.d`) as that IPv4 address: the packets reach it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// The special-purpose range `ip` lies in, if any: what an organization's hook may not reach
/// by default. Public unicast addresses give `None`.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(if ip.is_unspecified() || o[0] == 0 {
        "unspecified (\"this network\", 0.0.0.0/8)"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local (where cloud metadata services listen)"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "shared address space (100.64.0.0/10)"
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        "IETF protocol assignments (192.0.0.0/24)"
    } else if ip.is_documentation() {
        "documentation"
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        "benchmarking (198.18.0.0/15)"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() || o[0] >= 240 {
        "reserved (240.0.0.0/4)"
    } else {
        return None;
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_unique_local() {
        "unique local (fc00::/7)"
    } else if ip.is_unicast_link_local() || (s[0] & 0xffc0) == 0xfec0 {
        "link-local"
    } else if ip.is_multicast() {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation (2001:db8::/32)"
    } else if s[0] == 0x2002 {
        // 6to4: the IPv4 address it tunnels to is in the next 32 bits.
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return v4_range(Ipv4Addr::new(a, b, c, d)).map(|_| "6to4 to a special-purpose address");
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "discard-only (100::/64)"
    } else if s[..6] == [0; 6] {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        "IPv4-compatible (::/96)"
    } else {
        return None;
    })
}

/// Why a host or address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The host as given.
    pub host: String,
    /// The address refused.
    pub ip: IpAddr,
    /// Why.
    pub why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host == self.ip.to_string() {
            write!(f, "{} is {}", self.ip, self.why)
        } else {
            write!(f, "{} resolves to {}, {}", self.host, self.ip, self.why)
        }
    }
}

/// The operator's rules for organizations' webhook targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allow: Vec<TargetRule>,
    deny: Vec<TargetRule>,
}

impl TargetPolicy {
    /// From `org_allow_targets` and `org_deny_targets`.
    pub fn new(allow: &[String], deny: &[String]) -> Result<Self, String> {
        let parse = |list: &[String], key: &str| {
            list.iter()
                .map(|s| TargetRule::parse(s).map_err(|e| format!("webhooks.{key}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            allow: parse(allow, "org_allow_targets")?,
            deny: parse(deny, "org_deny_targets")?,
        })
    }

    /// Whether an organization's hook may connect to `ip`, reached as `host`.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        let refuse = |why: String| Refusal {
            host: normal_host(host),
            ip,
            why,
        };
        if self.deny.iter().any(|r| r.matches(host, ip)) {
            return Err(refuse(
                "refused by the operator (webhooks.org_deny_targets)".into(),
            ));
        }
        if self.allow.iter().any(|r| r.matches(host, ip)) {
            return Ok(());
        }
        match special_range(ip) {
            Some(range) => Err(refuse(format!(
                "a {range} address, which organizations' webhooks may not reach \
                 (an operator can allow it in webhooks.org_allow_targets)"
            ))),
            None => Ok(()),
        }
    }

    /// Judges `host` (a URL's host: IPv6 in brackets) when it is an address; `None` for a
    /// name, which only resolving can judge.
    pub fn check_literal(&self, host: &str) -> Option<Result<(), Refusal>> {
        let ip = normal_host(host).parse::<IpAddr>().ok()?;
        Some(self.check(&ip.to_string(), ip))
    }

    /// Checks `host` (an IP literal, or a name resolved here): refused when it is, or every
    /// address it resolves to is, refused. A name that does not resolve now passes: it is
    /// checked again at every attempt.
    pub async fn vet(&self, host: &str) -> Result<(), Refusal> {
        if let Some(verdict) = self.check_literal(host) {
            return verdict;
        }
        let bare = normal_host(host);
        let Ok(Ok(addrs)) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((bare.as_str(), 0)),
        )
        .await
        else {
            return Ok(());
        };
        let mut first_refusal = None;
        for addr in addrs {
            match self.check(&bare, addr.ip()) {
                Ok(()) => return Ok(()),
                Err(r) => {
                    first_refusal.get_or_insert(r);
                }
            }
        }
        first_refusal.map_or(Ok(()), Err)
    }
}

/// The resolver of the client organizations' hooks are sent with: the system's resolver,
/// keeping only the addresses the policy allows.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<TargetPolicy>,
}

impl GuardedResolver {
    /// Under `policy`.
    pub fn new(policy: Arc<TargetPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest_tls::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest_tls::dns::Name) -> reqwest_tls::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(&host, a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
                        refusal.get_or_insert(r);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refusal) {
                (true, Some(r)) => Err(format!("refused: {r}").into()),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest_tls::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn special_purpose_addresses_are_named_and_public_ones_pass() {
        for (addr, range) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared"),
            ("100.127.255.255", "shared"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "6to4"),
            ("100::1", "discard"),
            ("::127.0.0.1", "IPv4-compatible"),
        ] {
            let got = special_range(ip(addr));
            assert!(
                got.is_some_and(|g| g.contains(range)),
                "{addr}: {got:?}, expected {range}"
            );
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::",
        ] {
            assert_eq!(special_range(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn rules_parse_hosts_addresses_and_ranges() {
        assert_eq!(
            TargetRule::parse("10.20.0.0/16"),
            Ok(TargetRule::Net("10.20.0.0/16".parse().expect("net")))
        );
        // A range given with host bits set means the whole range.
        assert_eq!(
            TargetRule::parse("10.20.3.4/16"),
            Ok(TargetRule::Net("10.20.0.0/16".parse().expect("net")))
        );
        assert_eq!(
            TargetRule::parse("[::1]"),
            Ok(TargetRule::Net("::1/128".parse().expect("net")))
        );
        assert_eq!(
            TargetRule::parse("CI.Internal."),
            Ok(TargetRule::Host("ci.internal".into()))
        );
        for bad in ["", "a b", "http://x/", "10.0.0.0/33", "x..y", "ci/8"] {
            assert!(TargetRule::parse(bad).is_err(), "{bad:?}");
        }
        let e = TargetPolicy::new(&["nope nope".into()], &[]).expect_err("invalid");
        assert!(e.contains("webhooks.org_allow_targets"), "{e}");
    }

    #[test]
    fn deny_beats_allow_and_allow_opens_special_ranges() {
        let default = TargetPolicy::default();
        assert!(default.check("example.com", ip("93.184.215.14")).is_ok());
        let r = default
            .check("localhost", ip("127.0.0.1"))
            .expect_err("loopback");
        assert_eq!(
            r.to_string().split(',').next(),
            Some("localhost resolves to 127.0.0.1")
        );
        assert!(r.why.contains("org_allow_targets"), "{r}");
        let r = default
            .check("127.0.0.1", ip("127.0.0.1"))
            .expect_err("loopback");
        assert!(
            r.to_string().starts_with("127.0.0.1 is a loopback address"),
            "{r}"
        );

        let policy = TargetPolicy::new(
            &[
                "10.20.0.0/16".into(),
                "ci.internal".into(),
                "127.0.0.1".into(),
            ],
            &["10.20.9.0/24".into(), "evil.example".into()],
        )
        .expect("valid");
        assert!(policy.check("a", ip("10.20.1.1")).is_ok());
        assert!(policy.check("a", ip("::ffff:10.20.1.1")).is_ok());
        assert!(policy.check("a", ip("10.21.1.1")).is_err());
        assert!(policy.check("CI.internal.", ip("192.168.7.7")).is_ok());
        assert!(policy.check("127.0.0.1", ip("127.0.0.1")).is_ok());
        assert!(policy.check("a", ip("127.0.0.2")).is_err());
        let r = policy.check("a", ip("10.20.9.9")).expect_err("denied");
        assert!(r.why.contains("org_deny_targets"), "{r}");
        assert!(policy.check("evil.example", ip("8.8.8.8")).is_err());
    }

    #[tokio::test]
    async fn vetting_resolves_names_and_judges_literals() {
        let policy = TargetPolicy::default();
        let r = policy.vet("localhost").await.expect_err("loopback");
        assert_eq!(r.host, "localhost");
        assert!(policy.vet("[::1]").await.is_err());
        assert!(policy.vet("169.254.169.254").await.is_err());
        // Names that do not resolve pass here: every attempt checks them again.
        assert!(policy.vet("no-such-host.invalid").await.is_ok());
        let open = TargetPolicy::new(&["localhost".into()], &[]).expect("valid");
        assert!(open.vet("localhost").await.is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        use reqwest_tls::dns::Resolve;
        let guarded = GuardedResolver::new(Arc::new(TargetPolicy::default()));
        let e = guarded
            .resolve("localhost".parse().expect("name"))
            .await
            .err()
            .expect("refused");
        assert!(
            e.to_string().contains("refused: localhost resolves to"),
            "{e}"
        );
        let open = GuardedResolver::new(Arc::new(
            TargetPolicy::new(&["127.0.0.0/8".into()], &[]).expect("valid"),
        ));
        let addrs: Vec<_> = open
            .resolve("localhost".parse().expect("name"))
            .await
            .expect("resolved")
            .collect();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback() && a.is_ipv4()),
            "{addrs:?}"
        );
    }
}

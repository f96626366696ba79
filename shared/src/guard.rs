//! Where a webhook may point (SPEC §2): http(s) on ports 80/443, never an internal
//! address. Checked on the rendered URL before every send, and again at connect time by a
//! DNS resolver that refuses names resolving to internal addresses, so a hostname that
//! points at 127.0.0.1 or 169.254.169.254 is refused too. Only
//! `HOOKLINE_ALLOW_PRIVATE_TARGETS` lifts this (local development and tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Whether internal targets are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    pub allow_private: bool,
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the URL does not parse: {0}")]
    Unparsable(String),
    #[error("only http and https URLs are allowed, not `{0}:`")]
    Scheme(String),
    #[error("credentials in the URL are not allowed; use `auth`")]
    Credentials,
    #[error("only ports 80 and 443 are allowed, not {0}")]
    Port(u16),
    #[error("the URL has no host")]
    NoHost,
    #[error(
        "{0} is an internationalised (IDN or punycode) host name, which webhooks may not target: it can pass for another host"
    )]
    InternationalHost(String),
    #[error(
        "{host} is {} {reason} address, which webhooks may not target",
        article(reason)
    )]
    Internal { host: String, reason: &'static str },
}

/// "an unspecified address", "an IETF …", "a private …".
fn article(reason: &str) -> &'static str {
    match reason.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u' | 'I') => "an",
        _ => "a",
    }
}

/// Why an address is internal, or `None` for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let reason = match o {
        [0, ..] => "unspecified (0.0.0.0/8)",
        [10, ..] => "private",
        [100, b, ..] if (64..128).contains(&b) => "carrier-grade NAT",
        [127, ..] => "loopback",
        [169, 254, ..] => "link-local",
        [172, b, ..] if (16..32).contains(&b) => "private",
        [192, 0, 0, _] => "IETF protocol assignment",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [192, 88, 99, _] => "6to4 relay",
        [192, 168, ..] => "private",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking",
        [255, 255, 255, 255] => "broadcast",
        [a, ..] if (224..240).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved",
        _ => return None,
    };
    Some(reason)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d (IPv4-mapped): judged as the IPv4 address it maps.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    match seg {
        // ::a.b.c.d (deprecated IPv4-compatible) and ::ffff:0:a.b.c.d (IPv4-translated).
        [0, 0, 0, 0, 0, 0, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some("IPv4-compatible"),
        // 64:ff9b::/96 (NAT64): the IPv4 address it translates to decides.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded_v4(hi, lo)),
        // 64:ff9b:1::/48 (local-use NAT64).
        [0x64, 0xff9b, 1, ..] => Some("local-use NAT64"),
        // 2002::/16 (6to4): the embedded IPv4 address decides.
        [0x2002, hi, lo, ..] => classify_v4(embedded_v4(hi, lo)).map(|_| "6to4 of an internal"),
        // 2001:db8::/32 documentation; 2001::/32 Teredo; the rest of 2001::/23 is IETF use.
        [0x2001, 0x0db8, ..] => Some("documentation"),
        [0x2001, b, ..] if b < 0x0200 => Some("IETF special-purpose"),
        [0x0100, 0, 0, 0, ..] => Some("discard-only"),
        [a, ..] if a & 0xfe00 == 0xfc00 => Some("unique local"),
        [a, ..] if a & 0xffc0 == 0xfe80 => Some("link-local"),
        [a, ..] if a & 0xffc0 == 0xfec0 => Some("site-local"),
        [a, ..] if a & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Hostnames that name the machine itself or an internal zone, refused without a lookup.
fn internal_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || host.ends_with(".home.arpa")
}

/// Checks a rendered URL against the policy; on success it is the URL to send to.
pub fn check_url(raw: &str, policy: TargetPolicy) -> Result<Url, TargetError> {
    let url = Url::parse(raw).map_err(|e| TargetError::Unparsable(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(TargetError::Scheme(other.to_string())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let host = url.host().ok_or(TargetError::NoHost)?;
    // `Url` has already turned a Unicode name into punycode: one check covers both.
    if let Host::Domain(name) = host
        && name.split('.').any(|label| {
            label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
        })
    {
        return Err(TargetError::InternationalHost(name.to_string()));
    }
    if policy.allow_private {
        return Ok(url);
    }
    if let Some(port) = url.port() {
        // `Url` drops a port equal to the scheme's default, so any port here is another.
        let default = if url.scheme() == "https" { 443 } else { 80 };
        if port != default && port != 80 && port != 443 {
            return Err(TargetError::Port(port));
        }
    }
    let ip = match host {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(name) => {
            if internal_name(name) {
                return Err(TargetError::Internal {
                    host: name.to_string(),
                    reason: "local",
                });
            }
            None
        }
    };
    if let Some((ip, reason)) = ip.and_then(|ip| classify(ip).map(|r| (ip, r))) {
        return Err(TargetError::Internal {
            host: ip.to_string(),
            reason,
        });
    }
    Ok(url)
}

/// The error a [`GuardedResolver`] fails a lookup with; the sender finds it in the
/// error chain to tell a refusal from a network failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} resolves only to internal addresses ({reason})")]
pub struct BlockedTarget {
    pub host: String,
    pub reason: &'static str,
}

/// A DNS resolver for reqwest that drops internal addresses from every answer and fails
/// when nothing public is left. Connecting happens only to what it returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver {
    pub policy: TargetPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_reason = "unresolvable";
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| {
                    if policy.allow_private {
                        return true;
                    }
                    match classify(addr.ip()) {
                        Some(reason) => {
                            first_reason = reason;
                            false
                        }
                        None => true,
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedTarget {
                    host,
                    reason: first_reason,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetPolicy = TargetPolicy {
        allow_private: false,
    };

    #[test]
    fn the_reason_reads_with_its_article() {
        let message = |url: &str| {
            check_url(url, STRICT)
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        assert_eq!(
            message("http://0.0.0.0/"),
            "0.0.0.0 is an unspecified (0.0.0.0/8) address, which webhooks may not target"
        );
        assert!(message("http://192.0.0.170/").contains("is an IETF protocol assignment address"));
        assert!(message("http://10.0.0.1/").contains("is a private address"));
    }

    #[test]
    fn refuses_hostile_targets() {
        let hostile = [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",   // decimal 127.0.0.1
            "http://0x7f000001/",   // hex
            "http://0x7f.0.0.1/",   // hex octet
            "http://0177.0.0.1/",   // octal
            "http://017700000001/", // octal whole
            "http://0/",            // 0.0.0.0
            "http://0.0.0.0/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://2852039166/", // decimal 169.254.169.254
            "http://100.64.0.1/", // CGNAT
            "http://100.127.255.254/",
            "http://224.0.0.1/", // multicast
            "http://239.255.255.250/",
            "http://255.255.255.255/", // broadcast
            "http://240.0.0.1/",       // reserved
            "http://192.0.2.10/",      // documentation
            "http://198.51.100.7/",
            "http://203.0.113.9/",
            "http://198.18.0.1/", // benchmarking
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/", // IPv4-mapped
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::127.0.0.1]/",        // IPv4-compatible
            "http://[64:ff9b::127.0.0.1]/", // NAT64 of loopback
            "http://[64:ff9b::a9fe:a9fe]/", // NAT64 of the metadata address
            "http://[2002:7f00:1::]/",      // 6to4 of loopback
            "http://[2002:a9fe:a9fe::1]/",  // 6to4 of link-local
            "http://[fc00::1]/",            // ULA
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",             // link-local
            "http://[fec0::1]/",             // site-local
            "http://[ff02::1]/",             // multicast
            "http://[2001:db8::1]/",         // documentation
            "http://[2001:0:4136:e378::1]/", // Teredo
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://metadata.google.internal/",
            "https://printer.local/",
            "https://example.com:8443/",
            "https://example.com:22/",
            "http://example.com:8080/",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "data:text/plain,hi",
            "ftp://example.com/",
            "javascript:alert(1)",
            "http://",
            "not a url",
        ];
        assert!(hostile.len() >= 30);
        for url in hostile {
            assert!(check_url(url, STRICT).is_err(), "{url} was allowed");
        }
    }

    #[test]
    fn allows_public_targets_on_standard_ports() {
        for url in [
            "https://api.example.com/hooks?x=1",
            "http://example.com:80/",
            "https://example.com:443/",
            "http://93.184.216.34/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            "https://[::ffff:93.184.216.34]/",
            "https://[64:ff9b::5db8:d822]/",
            "https://xn.example/",
            "https://a-xn--b.example/",
        ] {
            assert!(check_url(url, STRICT).is_ok(), "{url} was refused");
        }
    }

    #[test]
    fn the_local_development_setting_allows_loopback_on_any_port_but_not_other_schemes() {
        let dev = TargetPolicy {
            allow_private: true,
        };
        assert!(check_url("http://127.0.0.1:8080/hook", dev).is_ok());
        assert!(check_url("http://localhost:3001/", dev).is_ok());
        assert!(check_url("file:///etc/passwd", dev).is_err());
        assert!(check_url("http://u:p@127.0.0.1/", dev).is_err());
        assert!(check_url("http://bücher.localhost:3001/", dev).is_err());
    }

    #[test]
    fn internationalised_host_names_are_refused_in_either_spelling() {
        for (url, host) in [
            ("https://bücher.example/", "xn--bcher-kva.example"),
            ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
            ("https://XN--BCHER-KVA.example/", "xn--bcher-kva.example"),
            ("https://api.xn--80ak6aa92e.com/", "api.xn--80ak6aa92e.com"),
            // Cyrillic "а" in a name that reads "apple".
            ("https://аpple.com/", "xn--pple-43d.com"),
        ] {
            assert_eq!(
                check_url(url, STRICT),
                Err(TargetError::InternationalHost(host.to_string())),
                "{url}"
            );
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            check_url("http://example.com:8080/", STRICT),
            Err(TargetError::Port(8080))
        );
        assert_eq!(
            check_url("http://169.254.169.254/", STRICT),
            Err(TargetError::Internal {
                host: "169.254.169.254".into(),
                reason: "link-local"
            })
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_internal_addresses() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver { policy: STRICT };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = resolver.resolve(name).await.err().unwrap();
        assert!(err.downcast_ref::<BlockedTarget>().is_some(), "{err}");
        let open = GuardedResolver {
            policy: TargetPolicy {
                allow_private: true,
            },
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}

//! The checks every request passes before anything else looks at it: `Host`
//! and `Origin` (DNS rebinding and cross-site requests) and the bearer token.
//! Pure functions over header bytes.

use crate::config::GatewayConfig;

/// Why a request was turned away at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is missing or names a host this server does not answer for.
    BadHost,
    /// `Origin` is present and not this server's (or an allowed) origin.
    BadOrigin,
    /// A token was presented and it is wrong (or malformed).
    BadToken,
    /// The route needs a token and none was presented.
    TokenRequired,
}

/// The door: built once from the configuration and the bound port.
#[derive(Debug, Clone)]
pub struct Guard {
    port: u16,
    loopback: bool,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    token: Option<Vec<u8>>,
}

impl Guard {
    /// A guard for a server listening on `port` with `config`'s rules.
    pub fn new(config: &GatewayConfig, port: u16) -> Self {
        Self {
            port,
            loopback: config.bind.ip().is_loopback(),
            allowed_hosts: config
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: config.allowed_origins.clone(),
            token: config.token.as_ref().map(|t| t.as_bytes().to_vec()),
        }
    }

    /// A loopback server answers only to loopback names (`127.0.0.1`,
    /// `localhost`, `[::1]`) on its own port, and to configured names; a public
    /// one (which always has a token) to any host unless names are configured.
    pub fn check_host(&self, host: Option<&[u8]>) -> Result<(), Refusal> {
        let host = host.ok_or(Refusal::BadHost)?;
        let host = std::str::from_utf8(host).map_err(|_| Refusal::BadHost)?;
        let host = host.trim().to_ascii_lowercase();
        if self.allowed_hosts.contains(&host) {
            return Ok(());
        }
        let (name, port) = split_host_port(&host).ok_or(Refusal::BadHost)?;
        let port_ok = port.map_or(self.port == 80, |p| p == self.port);
        let name_ok = if self.loopback || !self.allowed_hosts.is_empty() {
            is_loopback_name(name) || self.allowed_hosts.iter().any(|h| h == name)
        } else {
            true
        };
        if port_ok && name_ok {
            Ok(())
        } else {
            Err(Refusal::BadHost)
        }
    }

    /// No `Origin` (curl, SDKs, same-origin GETs) passes. A present one must be
    /// `http://<a host check_host accepts>` or listed exactly in the config.
    pub fn check_origin(&self, origin: Option<&[u8]>) -> Result<(), Refusal> {
        let Some(origin) = origin else {
            return Ok(());
        };
        let origin = std::str::from_utf8(origin).map_err(|_| Refusal::BadOrigin)?;
        if self.allowed_origins.iter().any(|o| o == origin) {
            return Ok(());
        }
        let rest = origin.strip_prefix("http://").ok_or(Refusal::BadOrigin)?;
        if rest.is_empty() || rest.contains('/') {
            return Err(Refusal::BadOrigin);
        }
        self.check_host(Some(rest.as_bytes()))
            .map_err(|_| Refusal::BadOrigin)
    }

    /// `Ok(true)`: the right token; `Ok(false)`: none presented (or the server
    /// has none); `Err(BadToken)`: a wrong or malformed one. `header` is the
    /// `Authorization` value, `query` an `access_token` query parameter (for
    /// `EventSource`, which cannot set headers).
    pub fn authorization(
        &self,
        header: Option<&[u8]>,
        query: Option<&str>,
    ) -> Result<bool, Refusal> {
        let presented = match (header, query) {
            (Some(h), _) => Some(bearer(h).ok_or(Refusal::BadToken)?),
            (None, Some(q)) => Some(q.as_bytes()),
            (None, None) => None,
        };
        match (presented, &self.token) {
            (None, _) => Ok(false),
            (Some(_), None) => Err(Refusal::BadToken),
            (Some(p), Some(t)) if constant_time_eq(p, t) => Ok(true),
            (Some(_), Some(_)) => Err(Refusal::BadToken),
        }
    }
}

fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at(header.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares in time that depends on the lengths only, never on where the
/// first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" || name == "[::1]" {
        return true;
    }
    name.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `name[:port]`, `[v6]`, `[v6]:port`. `None` for anything malformed.
pub(crate) fn split_host_port(host: &str) -> Option<(&str, Option<u16>)> {
    if host.is_empty() || host.len() > 255 {
        return None;
    }
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        match rest {
            "" => (name, None),
            _ => (name, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let ok_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':');
    if name.is_empty() || !name.chars().all(ok_char) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(bind: &str, token: Option<&str>) -> Guard {
        let mut c = GatewayConfig::new(bind.parse().unwrap());
        c.token = token.map(str::to_string);
        c.allow_public_bind = true;
        let port = c.bind.port();
        Guard::new(&c, port)
    }

    #[test]
    fn loopback_hosts_on_our_port_pass() {
        let g = guard("127.0.0.1:4000", None);
        for h in [
            "127.0.0.1:4000",
            "localhost:4000",
            "[::1]:4000",
            "LOCALHOST:4000",
            "127.0.0.2:4000",
        ] {
            assert_eq!(g.check_host(Some(h.as_bytes())), Ok(()), "{h}");
        }
    }

    #[test]
    fn rebinding_hosts_are_refused() {
        let g = guard("127.0.0.1:4000", None);
        for h in [
            "evil.example:4000",
            "127.0.0.1:4001",
            "127.0.0.1",
            "",
            "a b:4000",
            "[::1]x",
            "127.0.0.1:99999",
        ] {
            assert_eq!(
                g.check_host(Some(h.as_bytes())),
                Err(Refusal::BadHost),
                "{h}"
            );
        }
        assert_eq!(g.check_host(None), Err(Refusal::BadHost));
        assert_eq!(g.check_host(Some(&[0xff, 0xfe])), Err(Refusal::BadHost));
    }

    #[test]
    fn configured_hosts_pass() {
        let mut c = GatewayConfig::new("127.0.0.1:4000".parse().unwrap());
        c.allowed_hosts = vec!["keyring.local".into()];
        let g = Guard::new(&c, 4000);
        assert_eq!(g.check_host(Some(b"keyring.local:4000")), Ok(()));
        assert_eq!(
            g.check_host(Some(b"other.local:4000")),
            Err(Refusal::BadHost)
        );
    }

    #[test]
    fn public_bind_accepts_any_host_name_on_its_port() {
        let g = guard("0.0.0.0:4000", Some("0123456789abcdef"));
        assert_eq!(g.check_host(Some(b"node7.lan:4000")), Ok(()));
        assert_eq!(g.check_host(Some(b"node7.lan:4001")), Err(Refusal::BadHost));
    }

    #[test]
    fn origins_must_be_ours() {
        let g = guard("127.0.0.1:4000", None);
        assert_eq!(g.check_origin(None), Ok(()));
        assert_eq!(g.check_origin(Some(b"http://127.0.0.1:4000")), Ok(()));
        assert_eq!(g.check_origin(Some(b"http://localhost:4000")), Ok(()));
        for o in [
            "http://evil.example",
            "https://127.0.0.1:4000",
            "null",
            "http://127.0.0.1:4000/x",
            "http://localhost:4001",
            "http://",
        ] {
            assert_eq!(
                g.check_origin(Some(o.as_bytes())),
                Err(Refusal::BadOrigin),
                "{o}"
            );
        }
    }

    #[test]
    fn tokens_are_checked() {
        let g = guard("127.0.0.1:4000", Some("0123456789abcdef"));
        assert_eq!(g.authorization(None, None), Ok(false));
        assert_eq!(
            g.authorization(Some(b"Bearer 0123456789abcdef"), None),
            Ok(true)
        );
        assert_eq!(
            g.authorization(Some(b"bearer  0123456789abcdef "), None),
            Ok(true)
        );
        assert_eq!(g.authorization(None, Some("0123456789abcdef")), Ok(true));
        assert_eq!(
            g.authorization(Some(b"Bearer 0123456789abcdeX"), None),
            Err(Refusal::BadToken)
        );
        assert_eq!(
            g.authorization(Some(b"Basic 0123456789abcdef"), None),
            Err(Refusal::BadToken)
        );
        assert_eq!(
            g.authorization(Some(b"Bearer"), None),
            Err(Refusal::BadToken)
        );
        assert_eq!(g.authorization(None, Some("nope")), Err(Refusal::BadToken));
        let open = guard("127.0.0.1:4000", None);
        assert_eq!(
            open.authorization(Some(b"Bearer anything-at-all"), None),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

//! Name resolution for the push exporters' HTTP client, without a thread
//! per request.
//!
//! ureq resolves the host of every request, pooled connection or not, and
//! when the request has a timeout -- ours always do: the time left in the
//! flush budget -- it does so on a new thread it can give up on. With a
//! flush after each invocation, that was a thread started per push, on the
//! invocation's critical path (tens to hundreds of µs, more on a busy
//! machine). [`CachingResolver`] parses IP literals itself and remembers
//! what a host name resolved to for [`CACHE_TTL`], so only the first push to
//! a name, and one per TTL after it, goes through ureq's resolver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a host name's addresses are reused before it is looked up again.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(30);
/// Host names remembered at most (an exporter talks to one or two).
const MAX_CACHED_NAMES: usize = 16;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct CachingResolver {
    lookup: DefaultResolver,
    /// `scheme://authority` -> when it was looked up and what it gave.
    names: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = ip_literal(uri) {
            let mut addrs = self.empty();
            addrs.push(addr);
            return Ok(addrs);
        }
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map_or("", |a| a.as_str())
        );
        if let Ok(names) = self.names.lock()
            && let Some((at, addrs)) = names.get(&key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(addrs.clone());
        }
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        if let Ok(mut names) = self.names.lock() {
            names.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if names.len() < MAX_CACHED_NAMES {
                names.insert(key, (Instant::now(), addrs.clone()));
            }
        }
        Ok(addrs)
    }
}

/// The socket address of a URL whose host is an IP address (`[..]` for
/// IPv6) and whose port is given or implied by `http`/`https`.
fn ip_literal(uri: &Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = authority.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().expect("a URI")
    }

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().expect("a socket address"))
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        assert_eq!(
            ip_literal(&uri("http://127.0.0.1:9091/metrics")),
            addr("127.0.0.1:9091")
        );
        assert_eq!(
            ip_literal(&uri("https://[::1]/api/v1/write")),
            addr("[::1]:443")
        );
        assert_eq!(ip_literal(&uri("http://10.0.0.7/")), addr("10.0.0.7:80"));
        assert_eq!(ip_literal(&uri("http://localhost:9091/")), None);
        assert_eq!(ip_literal(&uri("http://gateway.example:9091/")), None);
    }

    #[test]
    fn names_are_looked_up_once_per_ttl() {
        let resolver = CachingResolver::default();
        let config = Config::default();
        let timeout = NextTimeout::default();
        let target = uri("http://localhost:9091/metrics");
        let first = resolver
            .resolve(&target, &config, timeout)
            .expect("localhost resolves");
        assert!(!first.is_empty());
        let cached = resolver.names.lock().expect("not poisoned").len();
        assert_eq!(cached, 1);
        let again = resolver.resolve(&target, &config, timeout).expect("cached");
        assert_eq!(&*again, &*first);
    }
}

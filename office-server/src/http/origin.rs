//! Where a request comes from: the rule every cookie-authenticated state change follows — JSON
//! or form — so that another site cannot make a signed-in browser act.

use axum::http::header::{HOST, ORIGIN, REFERER};
use axum::http::{HeaderMap, Uri};

/// `scheme://host[:port]`, lower-case, without the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    /// `host` or `host:port`.
    pub authority: String,
}

impl Origin {
    /// An origin as browsers send it, or a base URL with no path.
    pub fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        if rest.is_empty()
            || rest.contains(['/', '?', '#', '@', '\\'])
            || rest.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return None;
        }
        let authority = rest.to_ascii_lowercase();
        let default_port = if scheme == "https" { ":443" } else { ":80" };
        let authority = authority
            .strip_suffix(default_port)
            .map(str::to_string)
            .unwrap_or(authority);
        Some(Self { scheme, authority })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

/// The authority a request was sent to: `:authority` in HTTP/2 (the URI's), `Host` in HTTP/1.
pub fn request_authority<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(HOST).and_then(|v| v.to_str().ok()))
}

/// Whether a state-changing request comes from this site. A browser says where a request comes
/// from: `Sec-Fetch-Site` (only `same-origin`, or `none` for what the person typed, pass) and
/// `Origin` (it must be `public_url`'s origin when one is configured, else name the authority
/// the request was sent to). A request that says neither is not from a browser, and so not
/// a forgery riding on someone's cookie.
pub fn from_this_site(headers: &HeaderMap, uri: &Uri, public: Option<&Origin>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.to_str(), Ok("same-origin" | "none"))
    {
        return false;
    }
    let Some(sent) = headers.get(ORIGIN) else {
        return true;
    };
    let Some(sent) = sent.to_str().ok().and_then(Origin::parse) else {
        // "null" (a sandboxed frame, a privacy redirect) or junk: not this site.
        return false;
    };
    is_this_site(&sent, headers, uri, public)
}

/// Whether a followed link comes from a page of this site — for a GET that starts something
/// on the person's behalf elsewhere (a sign-in at the portal), where `Origin` is not sent:
/// `Sec-Fetch-Site: same-origin`, or, from a browser that does not send that, a `Referer` on
/// this site (its pages send one to themselves: `Referrer-Policy: same-origin`). A link on
/// another site, an address typed in, or a request that says neither fails.
pub fn navigated_from_this_site(headers: &HeaderMap, uri: &Uri, public: Option<&Origin>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin"));
    }
    headers
        .get(REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| {
            let (scheme, rest) = referer.split_once("://")?;
            let authority = rest.split(['/', '?', '#']).next()?;
            Origin::parse(&format!("{scheme}://{authority}"))
        })
        .is_some_and(|sent| is_this_site(&sent, headers, uri, public))
}

/// `public_url`'s origin when one is configured, else the authority the request was sent to.
fn is_this_site(sent: &Origin, headers: &HeaderMap, uri: &Uri, public: Option<&Origin>) -> bool {
    match public {
        Some(public) => sent == public,
        None => request_authority(uri, headers).is_some_and(|authority| {
            let expected = Origin::parse(&format!("{}://{authority}", sent.scheme));
            expected.is_some_and(|expected| expected.authority == sent.authority)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn origins_normalise() {
        assert_eq!(
            Origin::parse("HTTPS://Rating.Example:443"),
            Origin::parse("https://rating.example")
        );
        assert_eq!(
            Origin::parse("http://127.0.0.1:8080").unwrap().authority,
            "127.0.0.1:8080"
        );
        for bad in [
            "rating.example",
            "ftp://x",
            "https://x/path",
            "https://",
            "null",
            "https://a b",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_origin_must_be_this_site() {
        let uri: Uri = "/login".parse().unwrap();
        let h2: Uri = "https://localhost:8443/login".parse().unwrap();
        let here = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(from_this_site(&here, &uri, None));
        assert!(from_this_site(
            &headers(&[("host", "127.0.0.1:8080")]),
            &uri,
            None
        ));
        let evil = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(!from_this_site(&evil, &uri, None));
        // HTTP/2: no Host, the authority is in the URI.
        let h2_form = headers(&[("origin", "https://localhost:8443")]);
        assert!(from_this_site(&h2_form, &h2, None));
        assert!(!from_this_site(&headers(&[("origin", "null")]), &uri, None));
        let cross = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(!from_this_site(&cross, &uri, None));
        let same_site = headers(&[("sec-fetch-site", "same-site")]);
        assert!(!from_this_site(&same_site, &uri, None));
        // With a public URL, only its origin is this site.
        let public = Origin::parse("https://rating.office.example").unwrap();
        let proxied = headers(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://rating.office.example"),
        ]);
        assert!(from_this_site(&proxied, &uri, Some(&public)));
        assert!(!from_this_site(&here, &uri, Some(&public)));
    }

    #[test]
    fn a_link_followed_must_be_on_this_site() {
        let uri: Uri = "/f/x/account/sign-in".parse().unwrap();
        let host = ("host", "127.0.0.1:8080");
        let followed =
            |pairs: &[(&'static str, &str)]| navigated_from_this_site(&headers(pairs), &uri, None);
        assert!(followed(&[host, ("sec-fetch-site", "same-origin")]));
        for site in ["cross-site", "same-site", "none"] {
            assert!(!followed(&[host, ("sec-fetch-site", site)]), "{site}");
        }
        // Sec-Fetch-Site decides when sent, whatever the Referer says.
        assert!(!followed(&[
            host,
            ("sec-fetch-site", "cross-site"),
            ("referer", "http://127.0.0.1:8080/f/x/account"),
        ]));
        // Browsers without Sec-Fetch-Site: the Referer.
        assert!(followed(&[
            host,
            ("referer", "http://127.0.0.1:8080/f/x/account")
        ]));
        assert!(!followed(&[host, ("referer", "http://evil.example/f/x")]));
        assert!(!followed(&[
            host,
            ("referer", "http://127.0.0.1:8080.evil.example/")
        ]));
        assert!(!followed(&[host, ("referer", "junk")]));
        assert!(!followed(&[host]));
        let public = Origin::parse("https://rating.office.example").unwrap();
        let proxied = headers(&[
            ("host", "10.0.0.5:8080"),
            ("referer", "https://rating.office.example/f/x/account?y"),
        ]);
        assert!(navigated_from_this_site(&proxied, &uri, Some(&public)));
    }
}

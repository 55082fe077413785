//! HTTP Basic and Digest authentication (RFC 7617, RFC 7616) for both ends brgd plays:
//! the client answering an ACS's `401` challenge, and the Connection Request server
//! challenging the ACS.
//!
//! Digest is implemented for `qop=auth` (and the RFC 2069 form without `qop`, which old
//! servers still send), with the algorithms `MD5` and `SHA-256` (not the `-sess` variants,
//! which no ACS in the field uses). Header parsing is liberal: unquoted values, any case of
//! the scheme and parameter names, several challenges in one header or in several headers.
//! Nothing here panics on malformed input; an unusable challenge is `None`.

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// A Digest hash algorithm (RFC 7616 section 3.3 `algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (the default when a challenge names none).
    Md5,
    /// `SHA-256`.
    Sha256,
}

impl Algorithm {
    /// The token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("MD5") {
            Some(Self::Md5)
        } else if text.eq_ignore_ascii_case("SHA-256") {
            Some(Self::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Self::Md5 => Md5::digest(data.as_bytes()).to_vec(),
            Self::Sha256 => Sha256::digest(data.as_bytes()).to_vec(),
        };
        hex(&bytes)
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// An authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Digest realm=..., nonce=..., [qop=...], [algorithm=...], [opaque=...]`.
    Digest(DigestChallenge),
}

/// The parameters of a Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// `algorithm`.
    pub algorithm: Algorithm,
    /// Whether the server offers `qop=auth` (else the RFC 2069 form).
    pub qop_auth: bool,
}

/// Splits `key=value` / `key="quoted, value"` pairs separated by commas; keys lower-cased.
fn params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = quoted.get(end..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Parses the challenges of `WWW-Authenticate` header values and picks the strongest usable
/// one: Digest SHA-256, then Digest MD5, then Basic. `None` when none is usable.
pub fn pick_challenge<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut best: Option<(u8, Challenge)> = None;
    for header in headers {
        for challenge in split_challenges(header) {
            let rank = match &challenge {
                Challenge::Digest(d) if d.algorithm == Algorithm::Sha256 => 3,
                Challenge::Digest(_) => 2,
                Challenge::Basic => 1,
            };
            if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                best = Some((rank, challenge));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// One header value may carry several challenges: `Digest a=b, c=d, Basic realm="x"`.
fn split_challenges(header: &str) -> Vec<Challenge> {
    // Find the scheme tokens: a word followed by whitespace (not `=`) at the start or after a
    // comma outside quotes.
    let mut starts = Vec::new();
    let bytes = header.as_bytes();
    let mut in_quotes = false;
    let mut token_start = Some(0usize);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => token_start = Some(i + 1),
            b' ' | b'\t' if !in_quotes => {
                if let Some(s) = token_start {
                    let word = header[s..i].trim();
                    if !word.is_empty() && !word.contains('=') {
                        starts.push((s, i, word.to_owned()));
                        token_start = None;
                    } else if word.is_empty() {
                        token_start = Some(i + 1);
                    } else {
                        token_start = None;
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (n, (_, after, scheme)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(header.len(), |next| next.0);
        let text = header.get(*after..end).unwrap_or("");
        if scheme.eq_ignore_ascii_case("Basic") {
            out.push(Challenge::Basic);
        } else if scheme.eq_ignore_ascii_case("Digest") {
            let p = params(text);
            let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let Some(nonce) = get("nonce") else { continue };
            let algorithm = match get("algorithm") {
                None => Algorithm::Md5,
                Some(a) => match Algorithm::parse(&a) {
                    Some(a) => a,
                    None => continue,
                },
            };
            let qop = get("qop");
            let qop_auth = qop
                .as_deref()
                .is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")));
            if qop.is_some() && !qop_auth {
                continue; // auth-int only: not supported
            }
            out.push(Challenge::Digest(DigestChallenge {
                realm: get("realm").unwrap_or_default(),
                nonce,
                opaque: get("opaque"),
                algorithm,
                qop_auth,
            }));
        }
    }
    out
}

/// The `Authorization` value for Basic credentials.
pub fn basic_authorization(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64(format!("{username}:{password}").as_bytes())
    )
}

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The request-digest of RFC 7616 section 3.4.1 (or RFC 2069 when `qop` is `None`).
#[expect(
    clippy::too_many_arguments,
    reason = "the RFC's inputs, named as in the RFC"
)]
pub fn response(
    algorithm: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = algorithm.hex(&format!("{username}:{realm}:{password}"));
    let ha2 = algorithm.hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => algorithm.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => algorithm.hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The `Authorization` value answering a Digest challenge; `nc` counts the requests made
/// with this nonce (1 for the first), `cnonce` is a fresh client nonce.
pub fn digest_authorization(
    challenge: &DigestChallenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let nc = format!("{nc:08x}");
    let qop = challenge.qop_auth.then_some((nc.as_str(), cnonce));
    let resp = response(
        challenge.algorithm,
        username,
        &challenge.realm,
        password,
        method,
        uri,
        &challenge.nonce,
        qop,
    );
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}, response=\"{resp}\"",
        quote(username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
        challenge.algorithm.as_str(),
    );
    if challenge.qop_auth {
        out.push_str(&format!(
            ", qop=auth, nc={nc}, cnonce=\"{}\"",
            quote(cnonce)
        ));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
    }
    out
}

fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The fields of a Digest `Authorization` header, as a server checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri`.
    pub uri: String,
    /// `response`.
    pub response: String,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// `(nc, cnonce)` when `qop=auth`.
    pub qop: Option<(String, String)>,
}

impl DigestCredentials {
    /// Parses an `Authorization: Digest ...` value; `None` if it is not a usable Digest.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let p = params(rest);
        let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a)?,
        };
        let qop = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some((get("nc")?, get("cnonce")?)),
            Some(_) => return None,
        };
        Some(Self {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            algorithm,
            qop,
        })
    }

    /// The algorithm the response was computed with, by its length (64 hex digits:
    /// SHA-256, 32: MD5), else the one the header names. An ACS that joins several
    /// `WWW-Authenticate` headers may label an MD5 answer with the first challenge's
    /// `algorithm=SHA-256`; the length cannot lie.
    pub fn response_algorithm(&self) -> Algorithm {
        match self.response.len() {
            64 => Algorithm::Sha256,
            32 => Algorithm::Md5,
            _ => self.algorithm,
        }
    }

    /// Whether the response proves knowledge of `password` for `method` (the URI checked is
    /// the one in the header; the caller compares it with the request's).
    pub fn verify(&self, password: &str, method: &str) -> bool {
        let expected = response(
            self.response_algorithm(),
            &self.username,
            &self.realm,
            password,
            method,
            &self.uri,
            &self.nonce,
            self.qop.as_ref().map(|(nc, cn)| (nc.as_str(), cn.as_str())),
        );
        constant_time_eq(
            expected.as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }
}

/// Compares without an early exit, so timing does not reveal how much of a digest matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 section 3.9.1: the same request under MD5 and SHA-256.
    #[test]
    fn rfc7616_examples() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let digest = |alg| {
            response(
                alg,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                nonce,
                Some(("00000001", cnonce)),
            )
        };
        assert_eq!(digest(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            digest(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn picks_the_strongest_challenge_and_answers_it() {
        let headers = [
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="n1", opaque="op""#,
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="n2", opaque="op", Basic realm="x""#,
        ];
        let Some(Challenge::Digest(c)) = pick_challenge(headers) else {
            panic!("no digest challenge")
        };
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.nonce, "n2");
        assert!(c.qop_auth);
        let auth = digest_authorization(&c, "u\"ser", "pw", "POST", "/acs", 1, "abc");
        let creds = DigestCredentials::parse(&auth).expect("our header parses");
        assert_eq!(creds.username, "u\"ser");
        assert_eq!(creds.qop, Some(("00000001".into(), "abc".into())));
        assert!(creds.verify("pw", "POST"));
        assert!(!creds.verify("wrong", "POST"));
        assert!(!creds.verify("pw", "GET"));
    }

    #[test]
    fn basic_and_odd_headers() {
        assert_eq!(
            pick_challenge([r#"Basic realm="acs""#]),
            Some(Challenge::Basic)
        );
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        // RFC 2069 (no qop), unquoted values, lower-case scheme.
        let Some(Challenge::Digest(c)) = pick_challenge(["digest realm=r, nonce=abc"]) else {
            panic!("no digest challenge")
        };
        assert!(!c.qop_auth);
        assert_eq!(c.algorithm, Algorithm::Md5);
        for junk in [
            "",
            "Digest",
            "Digest realm=\"x",
            "Negotiate abc",
            "Digest nonce=1, algorithm=MD5-sess",
            "=,=,\"",
        ] {
            assert_eq!(pick_challenge([junk]), None, "{junk:?}");
            assert_eq!(DigestCredentials::parse(junk), None);
        }
    }

    /// Issue 17: an ACS that joins the two challenges into one and keeps the first
    /// `algorithm=` sends an MD5 hash labelled SHA-256; the length tells, and it passes.
    /// A wrong password still fails under either label.
    #[test]
    fn a_mislabelled_md5_answer_is_checked_as_md5() {
        let challenge = DigestChallenge {
            realm: "r".into(),
            nonce: "n".into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: true,
        };
        let md5 = digest_authorization(&challenge, "acs", "pw", "GET", "/cr", 1, "c");
        let labelled = md5.replace("algorithm=MD5", "algorithm=SHA-256");
        assert_ne!(md5, labelled);
        let creds = DigestCredentials::parse(&labelled).expect("parses");
        assert_eq!(creds.algorithm, Algorithm::Sha256);
        assert_eq!(creds.response_algorithm(), Algorithm::Md5);
        assert!(creds.verify("pw", "GET"));
        assert!(!creds.verify("other", "GET"));
        let sha = digest_authorization(
            &DigestChallenge {
                algorithm: Algorithm::Sha256,
                ..challenge
            },
            "acs",
            "pw",
            "GET",
            "/cr",
            1,
            "c",
        );
        let creds = DigestCredentials::parse(&sha.replace("SHA-256", "MD5")).expect("parses");
        assert!(creds.verify("pw", "GET"), "a SHA-256 answer labelled MD5");
    }
}

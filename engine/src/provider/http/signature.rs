//! The signatures HTTP providers put on their callbacks (and Vonage on requests), computed and
//! checked in constant time. The API checks callbacks with these; the engine signs Vonage
//! requests with them when a signature secret is configured.
//!
//! - **Twilio** (`X-Twilio-Signature`): HMAC-SHA1, keyed with the account's auth token, over
//!   the full URL Twilio requested (scheme, host, path and query) followed by every POST
//!   parameter as name then value, no separators, sorted by name; base64.
//! - **Vonage** signed requests and callbacks (`sig` parameter): every parameter but `sig`,
//!   sorted by name, `&` and `=` in values replaced by `_`, joined as `&name=value…`; then
//!   `md5hash`: MD5 of that string followed by the signature secret (lower-case hex), or
//!   `md5`/`sha1`/`sha256`/`sha512`: HMAC keyed with the secret (upper-case hex). Vonage
//!   compares case-insensitively; so do we.

use base64::Engine as _;
use hmac::{Mac, SimpleHmac};
use subtle::ConstantTimeEq;

/// How a Vonage signature is computed (the account's "signature method" setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VonageSignatureMethod {
    /// MD5 of the parameter string followed by the secret (Vonage's default).
    #[default]
    Md5hash,
    /// HMAC-MD5.
    Md5,
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl VonageSignatureMethod {
    /// The name Vonage uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5hash => "md5hash",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

/// Twilio's signature of a request to `url` with form parameters `params` (in any order; a
/// name may repeat).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Stable: repeated names keep their order, as Twilio's own libraries do.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * sorted.len());
    parts.push(url.as_bytes());
    for (name, value) in sorted {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD
        .encode(hmac_bytes::<sha1::Sha1>(auth_token.as_bytes(), &parts))
}

/// Whether `signature` is Twilio's for this request, trying each of `urls` (the URL as seen
/// and its variants, e.g. with and without a default port). Constant time per comparison.
pub fn twilio_verify(
    auth_token: &str,
    urls: &[String],
    params: &[(String, String)],
    signature: &str,
) -> bool {
    if signature.trim().is_empty() {
        return false;
    }
    let mut ok = false;
    for url in urls {
        let expected = twilio_signature(auth_token, url, params);
        ok |= bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes()));
    }
    ok
}

/// The string Vonage signs: `&name=value` for every parameter but `sig`, sorted by name, with
/// `&` and `=` in values replaced by `_`.
fn vonage_base(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sig").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut base = String::new();
    for (name, value) in sorted {
        base.push('&');
        base.push_str(name);
        base.push('=');
        base.push_str(&value.replace(['&', '='], "_"));
    }
    base
}

/// Vonage's signature of `params` (any `sig` among them is left out).
pub fn vonage_signature(
    method: VonageSignatureMethod,
    secret: &str,
    params: &[(String, String)],
) -> String {
    use md5::Digest as _;
    let base = vonage_base(params);
    match method {
        VonageSignatureMethod::Md5hash => {
            let mut hasher = md5::Md5::new();
            hasher.update(base.as_bytes());
            hasher.update(secret.as_bytes());
            hex(&hasher.finalize())
        }
        VonageSignatureMethod::Md5 => hmac_hex::<md5::Md5>(secret, &base),
        VonageSignatureMethod::Sha1 => hmac_hex::<sha1::Sha1>(secret, &base),
        VonageSignatureMethod::Sha256 => hmac_hex::<sha2::Sha256>(secret, &base),
        VonageSignatureMethod::Sha512 => hmac_hex::<sha2::Sha512>(secret, &base),
    }
}

/// Whether `params` carry a valid Vonage `sig` (compared without regard to case, in constant
/// time). A missing `sig` is not valid.
pub fn vonage_verify(
    method: VonageSignatureMethod,
    secret: &str,
    params: &[(String, String)],
) -> bool {
    let Some((_, sig)) = params.iter().find(|(k, _)| k == "sig") else {
        return false;
    };
    if sig.trim().is_empty() {
        return false;
    }
    let expected = vonage_signature(method, secret, params).to_ascii_lowercase();
    bool::from(
        expected
            .as_bytes()
            .ct_eq(sig.trim().to_ascii_lowercase().as_bytes()),
    )
}

/// Constant-time equality of two secrets (shared callback tokens).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// HMAC of `parts` keyed with `key`. HMAC takes keys of any length, so the error case cannot
/// happen; it yields no bytes, which matches no signature (empty ones are refused).
fn hmac_bytes<D>(key: &[u8], parts: &[&[u8]]) -> Vec<u8>
where
    D: hmac::digest::Digest + hmac::digest::core_api::BlockSizeUser + Clone,
{
    match <SimpleHmac<D> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hmac_hex<D>(secret: &str, base: &str) -> String
where
    D: hmac::digest::Digest + hmac::digest::core_api::BlockSizeUser + Clone,
{
    hex(&hmac_bytes::<D>(secret.as_bytes(), &[base.as_bytes()])).to_ascii_uppercase()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The example of Twilio's request-validation docs, as Twilio's own libraries test it.
    #[test]
    fn twilio_published_example() {
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio_signature("12345", url, &p),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(twilio_verify(
            "12345",
            &[url.to_owned()],
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!twilio_verify(
            "54321",
            &[url.to_owned()],
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    /// Vonage's own SDK vectors (an inbound message signed with each method).
    #[test]
    fn vonage_published_examples() {
        let p = params(&[
            ("message-timestamp", "2013-11-21 15:27:30"),
            ("messageId", "020000001B0FE827"),
            ("msisdn", "14843472194"),
            ("text", "Test again"),
            ("timestamp", "1385047698"),
            ("to", "13239877404"),
            ("type", "text"),
        ]);
        let secret = "my_secret_key_for_testing";
        use VonageSignatureMethod::*;
        for (method, expected) in [
            (Md5hash, "d2e7b1dc968737c5998ad624e02f90b7"),
            (Md5, "DDEBD46008C2D4E93CCE578A332A52D5"),
            (Sha1, "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A"),
            (
                Sha256,
                "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330",
            ),
        ] {
            assert_eq!(vonage_signature(method, secret, &p), expected, "{method:?}");
        }
        let mut signed = p.clone();
        signed.push(("sig".into(), "D2E7B1DC968737C5998AD624E02F90B7".into()));
        assert!(vonage_verify(Md5hash, secret, &signed));
        assert!(!vonage_verify(Md5hash, "other", &signed));
        assert!(!vonage_verify(Md5hash, secret, &p), "no sig");
        // `&` and `=` in values.
        let amp = params(&[
            ("keyword", "TEST"),
            ("message-timestamp", "2017-04-04 22:57:47"),
            ("messageId", "0B00000042AC53BD"),
            ("msisdn", "14843472194"),
            ("nonce", "929d6744-bd28-42c8-b6cf-31d5b4f43732"),
            ("sig", "e06d9763e3fd0b9c31beb5fc2fcb011c"),
            ("text", "Test with & and ="),
            ("timestamp", "1491346667"),
            ("to", "12192259404"),
            ("type", "text"),
        ]);
        assert!(vonage_verify(Md5hash, secret, &amp));
    }
}

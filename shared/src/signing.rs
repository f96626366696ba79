//! Standard Webhooks v1 signatures and the auth headers a webhook sends its receiver.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Millis;
use crate::model::{Auth, SigningSecrets};

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";
pub const MIN_SECRET_BYTES: usize = 24;
pub const MAX_SECRET_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("a signing secret is `whsec_` followed by base64")]
    NotBase64,
    #[error("a signing secret must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")]
    BadLength,
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(crate::ids::random_bytes(32))
    )
}

/// The key bytes of a `whsec_…` secret (the prefix is optional, as in the spec's libraries).
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, SigningError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD.decode(b64).map_err(|_| SigningError::NotBase64)?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        return Err(SigningError::BadLength);
    }
    Ok(key)
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = hmac_sha256(key);
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// HMAC takes keys of any length, so `new_from_slice` never fails for it; the fallback
/// keeps this function total without a panic path.
fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

/// One `v1,<base64>` signature.
pub fn sign_one(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, msg_id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// A webhook's signing keys, decoded and keyed once, ready to sign many requests: the
/// delivery function keeps one per webhook version.
#[derive(Clone)]
pub struct Signer {
    /// The keyed MAC of each secret, and until when it signs (`None`: the current one).
    keys: Vec<(HmacSha256, Option<Millis>)>,
}

impl Signer {
    pub fn new(secrets: &SigningSecrets) -> Result<Signer, SigningError> {
        let mut keys = vec![(hmac_sha256(&decode_secret(&secrets.current)?), None)];
        if let (Some(previous), Some(until)) = (&secrets.previous, secrets.previous_expires_at) {
            keys.push((hmac_sha256(&decode_secret(previous)?), Some(until)));
        }
        Ok(Signer { keys })
    }

    /// The `webhook-signature` header at `now`: one `v1,<base64>` per active key, current
    /// first, space separated.
    pub fn header(&self, msg_id: &str, timestamp: i64, body: &[u8], now: Millis) -> String {
        let timestamp = timestamp.to_string();
        let mut out = String::with_capacity(48 * self.keys.len());
        for (keyed, until) in &self.keys {
            if until.is_some_and(|until| now >= until) {
                continue;
            }
            let mut mac = keyed.clone();
            for part in [msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
                mac.update(part);
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("v1,");
            STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
        }
        out
    }
}

/// Whether any signature in `header` is valid for `secret` (what a receiver does; used by
/// our tests and the local receiver). Comparison is constant-time.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(key) = decode_secret(secret) else {
        return false;
    };
    header.split(' ').any(|sig| {
        let Some(b64) = sig.strip_prefix("v1,") else {
            return false;
        };
        let Ok(tag) = STANDARD.decode(b64) else {
            return false;
        };
        mac(&key, msg_id, timestamp, body)
            .verify_slice(&tag)
            .is_ok()
    })
}

/// The `Authorization` header value for a webhook's auth at `now_secs`.
pub fn authorization(auth: &Auth, now_secs: i64) -> Option<String> {
    match auth {
        Auth::None => None,
        Auth::Bearer { token, .. } => Some(format!("Bearer {token}")),
        Auth::Basic { username, password } => Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{username}:{password}"))
        )),
        Auth::Jwt {
            secret,
            claims,
            ttl_seconds,
        } => Some(format!(
            "Bearer {}",
            jwt_hs256(secret.as_bytes(), claims, now_secs, *ttl_seconds)
        )),
    }
}

/// An HS256 JWT with the configured claims plus `iat` and `exp = iat + ttl`.
pub fn jwt_hs256(
    key: &[u8],
    claims: &serde_json::Map<String, serde_json::Value>,
    now_secs: i64,
    ttl_seconds: u32,
) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut payload = claims.clone();
    payload.insert("iat".into(), now_secs.into());
    payload.insert("exp".into(), (now_secs + i64::from(ttl_seconds)).into());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::Value::Object(payload).to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = hmac_sha256(key);
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn reproduces_the_standard_webhooks_vector() {
        let key = decode_secret(SECRET).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(sign_one(&key, MSG_ID, TIMESTAMP, BODY), SIGNATURE);
        assert!(verify(SECRET, MSG_ID, TIMESTAMP, BODY, SIGNATURE));
        // The prefix is optional on the verifying side.
        assert!(verify(
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            MSG_ID,
            TIMESTAMP,
            BODY,
            SIGNATURE
        ));
    }

    #[test]
    fn the_vector_fails_when_anything_signed_changes() {
        assert!(!verify(
            SECRET,
            MSG_ID,
            TIMESTAMP,
            br#"{"test": 2432232315}"#,
            SIGNATURE
        ));
        assert!(!verify(SECRET, "msg_other", TIMESTAMP, BODY, SIGNATURE));
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP + 1, BODY, SIGNATURE));
        assert!(!verify(&new_secret(), MSG_ID, TIMESTAMP, BODY, SIGNATURE));
        assert!(!verify(
            SECRET,
            MSG_ID,
            TIMESTAMP,
            BODY,
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
    }

    #[test]
    fn a_rotation_sends_both_signatures_space_separated_until_the_old_one_expires() {
        let new_s = new_secret();
        let rotated = SigningSecrets {
            current: new_s.clone(),
            previous: Some(SECRET.to_string()),
            previous_expires_at: Some(5_000),
        };
        let signer = Signer::new(&rotated).unwrap();
        let header = signer.header(MSG_ID, TIMESTAMP, BODY, 4_999);
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], SIGNATURE);
        assert!(verify(&new_s, MSG_ID, TIMESTAMP, BODY, &header));
        assert!(verify(SECRET, MSG_ID, TIMESTAMP, BODY, &header));
        let later = signer.header(MSG_ID, TIMESTAMP, BODY, 5_000);
        assert!(!later.contains(' ') && !verify(SECRET, MSG_ID, TIMESTAMP, BODY, &later));
        // The keyed signer and the one-shot function agree on the published vector.
        let vector = SigningSecrets {
            current: SECRET.to_string(),
            previous: None,
            previous_expires_at: None,
        };
        assert_eq!(
            Signer::new(&vector)
                .unwrap()
                .header(MSG_ID, TIMESTAMP, BODY, 0),
            SIGNATURE
        );
    }

    #[test]
    fn secrets_are_24_to_64_bytes_of_base64() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(decode_secret(&s).unwrap().len(), 32);
        assert_ne!(s, new_secret());
        assert_eq!(
            decode_secret("whsec_c2hvcnQ="),
            Err(SigningError::BadLength)
        );
        assert_eq!(
            decode_secret("whsec_not base64!"),
            Err(SigningError::NotBase64)
        );
        assert_eq!(
            decode_secret(&format!("whsec_{}", STANDARD.encode([7u8; 65]))),
            Err(SigningError::BadLength)
        );
    }

    #[test]
    fn bearer_and_basic_headers() {
        let bearer = Auth::Bearer {
            token: "tok".into(),
            generated: false,
        };
        assert_eq!(authorization(&bearer, 0).as_deref(), Some("Bearer tok"));
        let basic = Auth::Basic {
            username: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(
            authorization(&basic, 0).as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(authorization(&Auth::None, 0), None);
    }

    #[test]
    fn jwt_carries_iat_exp_and_the_configured_claims_and_verifies_with_hs256() {
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), "hookline".into());
        claims.insert("aud".into(), serde_json::json!(["crm"]));
        let auth = Auth::Jwt {
            secret: "a-shared-secret".into(),
            claims,
            ttl_seconds: 300,
        };
        let header = authorization(&auth, 1_700_000_000).unwrap();
        let token = header.strip_prefix("Bearer ").unwrap();
        let parts: Vec<_> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let head: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(head, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({"iss": "hookline", "aud": ["crm"], "iat": 1_700_000_000, "exp": 1_700_000_300})
        );
        let mut mac = HmacSha256::new_from_slice(b"a-shared-secret").unwrap();
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap();
    }

    #[test]
    fn jwt_matches_an_independently_computed_hs256_token() {
        // Computed with Python's hmac and base64 modules from the same header and claims.
        let token = jwt_hs256(b"secret", &serde_json::Map::new(), 0, 1);
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjEsImlhdCI6MH0.vNbKjlipPgS9t0Vk05u_pnodDa6rNuD5yU4tqLUqt5o"
        );
    }
}

//! API credentials: the deployment's admin key (all projects), a project key
//! (`hlk_<id>_<secret>`, one project), or a customer portal token (`hlp_<id>_<secret>`,
//! one project, until it expires, perhaps read-only; SPEC §11). Only a key's SHA-256 is
//! stored, under its id; the prefix says which kind the record must be.

use std::sync::Arc;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::clock::{Millis, SECOND};
use crate::config::Secret;
use crate::store::{ApiKeyRecord, ApiKeyStore, PortalTerms};

const KEY_PREFIX: &str = "hlk_";
const PORTAL_PREFIX: &str = "hlp_";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Project(String),
    /// A customer portal token of this project.
    Portal {
        project: String,
        read_only: bool,
        expires_at: Millis,
    },
}

/// What a route does with a project: reads it (GET, and previews, which store nothing)
/// or changes something (anything else, a test send included: it calls a receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Caller {
    /// May this caller act on `project` so? A key for another project learns nothing: the
    /// answer is the same 403 whether or not anything exists there. A read-only portal
    /// token reads, and is told it may not write.
    pub fn authorize(&self, project: &str, access: Access) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Project(p) if p == project => Ok(()),
            Caller::Portal {
                project: p,
                read_only,
                ..
            } if p == project => {
                if *read_only && access == Access::Write {
                    Err(ApiError::ReadOnly)
                } else {
                    Ok(())
                }
            }
            Caller::Project(_) | Caller::Portal { .. } => Err(ApiError::Forbidden),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Project(_) | Caller::Portal { .. } => Err(ApiError::Forbidden),
        }
    }

    /// The admin key or a project key: a portal token never issues credentials.
    pub fn require_key(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin | Caller::Project(_) => Ok(()),
            Caller::Portal { .. } => Err(ApiError::Forbidden),
        }
    }
}

#[derive(Clone)]
pub struct Authenticator {
    admin_key: Option<Secret>,
    keys: Arc<dyn ApiKeyStore>,
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Authenticator {
    pub fn new(admin_key: Option<Secret>, keys: Arc<dyn ApiKeyStore>) -> Authenticator {
        Authenticator { admin_key, keys }
    }

    /// The caller of a request, from `Authorization: Bearer <key>`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        if let Some(admin) = &self.admin_key {
            // Compare digests so the comparison is constant-time whatever the lengths.
            let a = Sha256::digest(presented.as_bytes());
            let b = Sha256::digest(admin.expose().as_bytes());
            if bool::from(a.ct_eq(&b)) {
                return Ok(Caller::Admin);
            }
        }
        let (id, portal) = key_id(presented).ok_or(ApiError::Unauthorized)?;
        let record = self.keys.get(&id).await?.ok_or(ApiError::Unauthorized)?;
        let hash = sha256_hex(presented);
        if !bool::from(hash.as_bytes().ct_eq(record.key_hash.as_bytes()))
            || portal != record.portal.is_some()
            || record.expired(crate::clock::now_ms())
        {
            return Err(ApiError::Unauthorized);
        }
        Ok(match record.portal {
            None => Caller::Project(record.project_id),
            Some(terms) => Caller::Portal {
                project: record.project_id,
                read_only: terms.read_only,
                expires_at: terms.expires_at,
            },
        })
    }
}

impl Authenticator {
    /// Authenticates the caller and checks it may act on `project` with `access`.
    pub async fn for_project(
        &self,
        headers: &HeaderMap,
        project: &str,
        access: Access,
    ) -> Result<Caller, ApiError> {
        let caller = self.authenticate(headers).await?;
        check_project_id(project)?;
        caller.authorize(project, access)?;
        Ok(caller)
    }
}

/// The record id inside a presented key or token, if it has our shape, and whether it is
/// a portal token.
fn key_id(presented: &str) -> Option<(String, bool)> {
    let (rest, portal) = match presented.strip_prefix(KEY_PREFIX) {
        Some(rest) => (rest, false),
        None => (presented.strip_prefix(PORTAL_PREFIX)?, true),
    };
    let (id, secret) = rest.split_at_checked(26)?;
    let secret = secret.strip_prefix('_')?;
    let id = format!("key_{id}");
    (crate::ids::is_id("key", &id) && secret.len() >= 32).then_some((id, portal))
}

/// A new project key: the record to store and the key to show once.
pub fn new_api_key(project: &str, now: Millis) -> (ApiKeyRecord, String) {
    new_credential(KEY_PREFIX, project, None, now)
}

/// The most and the default lifetime of a portal token.
pub const PORTAL_MAX_TTL_SECONDS: u64 = 86_400;
pub const PORTAL_DEFAULT_TTL_SECONDS: u64 = 3_600;

/// A new portal token for `project`, working for `ttl_seconds` from `now` (whole seconds):
/// the record to store and the token to show once.
pub fn new_portal_token(
    project: &str,
    read_only: bool,
    ttl_seconds: u64,
    now: Millis,
) -> (ApiKeyRecord, String) {
    let ttl = i64::try_from(ttl_seconds.min(PORTAL_MAX_TTL_SECONDS)).unwrap_or(0);
    let terms = PortalTerms {
        read_only,
        expires_at: (now / SECOND + ttl) * SECOND,
    };
    new_credential(PORTAL_PREFIX, project, Some(terms), now)
}

fn new_credential(
    prefix: &str,
    project: &str,
    portal: Option<PortalTerms>,
    now: Millis,
) -> (ApiKeyRecord, String) {
    let id = crate::ids::new_id("key", now);
    let suffix = id.trim_start_matches("key_");
    let key = format!("{prefix}{suffix}_{}", crate::ids::random_token(32));
    let record = ApiKeyRecord {
        id,
        project_id: project.to_string(),
        key_hash: sha256_hex(&key),
        created_at: now,
        portal,
        name: None,
    };
    (record, key)
}

/// A project id: 1–64 of `A-Z a-z 0-9 _ - .`, but not `.` or `..`: in a path those are
/// dot segments, which browsers, HTTP clients and the console's links resolve away, so
/// a project so named could be made with a raw request and never reached again.
pub fn check_project_id(project: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&project.len())
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && project != "."
        && project != "..";
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest {
            code: "invalid_project",
            message: "a project id is 1 to 64 of A-Z, a-z, 0-9, '_', '-', '.', and not '.' or '..'"
                .into(),
            field: Some("project".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_id_is_refused_where_a_path_could_not_hold_it() {
        for ok in ["acme", "a", "A-b_c.d", "...", ".a", "a..", &"p".repeat(64)] {
            assert!(check_project_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "a%2e", &"p".repeat(65)] {
            assert!(check_project_id(bad).is_err(), "{bad:?}");
        }
    }
    use crate::store::memory::InMemoryApiKeyStore;

    fn bearer(k: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {k}").parse().unwrap());
        h
    }

    #[tokio::test]
    async fn admin_and_project_keys_authenticate_and_garbage_does_not() {
        let store = Arc::new(InMemoryApiKeyStore::default());
        let (record, key) = new_api_key("acme", 1);
        assert!(!record.key_hash.contains(&key) && record.key_hash.len() == 64);
        store.put(&record).await.unwrap();
        let auth = Authenticator::new(Some(Secret::new("local-admin-key")), store);
        assert_eq!(
            auth.authenticate(&bearer("local-admin-key")).await.unwrap(),
            Caller::Admin
        );
        assert_eq!(
            auth.authenticate(&bearer(&key)).await.unwrap(),
            Caller::Project("acme".into())
        );
        let mut tampered = key.clone();
        tampered.pop();
        tampered.push('x');
        for bad in [tampered.as_str(), "local-admin-ke", "hlk_short", ""] {
            assert!(
                matches!(
                    auth.authenticate(&bearer(bad)).await,
                    Err(ApiError::Unauthorized)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            auth.authenticate(&HeaderMap::new()).await,
            Err(ApiError::Unauthorized)
        ));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", "Basic eDp5".parse().unwrap());
        assert!(matches!(
            auth.authenticate(&basic).await,
            Err(ApiError::Unauthorized)
        ));
    }

    #[test]
    fn a_project_key_is_forbidden_elsewhere_and_from_admin_routes() {
        let caller = Caller::Project("acme".into());
        assert!(caller.authorize("acme", Access::Write).is_ok());
        assert!(matches!(
            caller.authorize("globex", Access::Read),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(caller.require_admin(), Err(ApiError::Forbidden)));
        assert!(caller.require_key().is_ok());
        assert!(Caller::Admin.authorize("anything", Access::Write).is_ok());
    }

    #[tokio::test]
    async fn portal_tokens_are_their_project_until_they_expire_and_read_only_reads() {
        let store = Arc::new(InMemoryApiKeyStore::default());
        let now = crate::clock::now_ms();
        let (full, full_token) = new_portal_token("acme", false, 60, now);
        let (read, read_token) = new_portal_token("acme", true, 60, now);
        let (gone, gone_token) = new_portal_token("acme", false, 60, now - 61 * SECOND);
        for r in [&full, &read, &gone] {
            assert!(r.key_hash.len() == 64 && r.portal.is_some());
            store.put(r).await.unwrap();
        }
        assert!(full_token.starts_with("hlp_") && !full.key_hash.contains(&full_token));
        let auth = Authenticator::new(None, store.clone());
        let caller = auth.authenticate(&bearer(&full_token)).await.unwrap();
        assert!(
            matches!(&caller, Caller::Portal { project, read_only: false, .. } if project == "acme")
        );
        assert!(caller.authorize("acme", Access::Write).is_ok());
        assert!(matches!(
            caller.authorize("globex", Access::Read),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(caller.require_admin(), Err(ApiError::Forbidden)));
        assert!(matches!(caller.require_key(), Err(ApiError::Forbidden)));
        let reader = auth.authenticate(&bearer(&read_token)).await.unwrap();
        assert!(reader.authorize("acme", Access::Read).is_ok());
        assert!(matches!(
            reader.authorize("acme", Access::Write),
            Err(ApiError::ReadOnly)
        ));
        assert!(matches!(
            auth.authenticate(&bearer(&gone_token)).await,
            Err(ApiError::Unauthorized)
        ));
        // A token's secret under the other prefix is refused: the record says its kind.
        let as_key = full_token.replacen("hlp_", "hlk_", 1);
        assert!(matches!(
            auth.authenticate(&bearer(&as_key)).await,
            Err(ApiError::Unauthorized)
        ));
        let (key, key_secret) = new_api_key("acme", now);
        store.put(&key).await.unwrap();
        let as_token = key_secret.replacen("hlk_", "hlp_", 1);
        assert!(matches!(
            auth.authenticate(&bearer(&as_token)).await,
            Err(ApiError::Unauthorized)
        ));
        // The longest a token lives is a day.
        let (long, _) = new_portal_token("acme", false, u64::MAX, now);
        assert!(long.portal.unwrap().expires_at <= now + 86_400 * SECOND);
    }
}

//! API keys: the deployment's admin key (all projects), or a key bound to one project.
//! Project keys look like `hlk_<id>_<secret>`; only their SHA-256 is stored, under the id.

use std::sync::Arc;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::clock::Millis;
use crate::config::Secret;
use crate::store::{ApiKeyRecord, ApiKeyStore};

const KEY_PREFIX: &str = "hlk_";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Project(String),
}

impl Caller {
    /// May this caller act on `project`? A key for another project learns nothing: the
    /// answer is the same 403 whether or not anything exists there.
    pub fn authorize(&self, project: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Project(p) if p == project => Ok(()),
            Caller::Project(_) => Err(ApiError::Forbidden),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Project(_) => Err(ApiError::Forbidden),
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
        let id = key_id(presented).ok_or(ApiError::Unauthorized)?;
        let record = self.keys.get(&id).await?.ok_or(ApiError::Unauthorized)?;
        let hash = sha256_hex(presented);
        if bool::from(hash.as_bytes().ct_eq(record.key_hash.as_bytes())) {
            Ok(Caller::Project(record.project_id))
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

impl Authenticator {
    /// Authenticates the caller and checks it may act on `project`.
    pub async fn for_project(
        &self,
        headers: &HeaderMap,
        project: &str,
    ) -> Result<Caller, ApiError> {
        let caller = self.authenticate(headers).await?;
        check_project_id(project)?;
        caller.authorize(project)?;
        Ok(caller)
    }
}

/// The record id inside a presented key, if it has our shape.
fn key_id(presented: &str) -> Option<String> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_at_checked(26)?;
    let secret = secret.strip_prefix('_')?;
    let id = format!("key_{id}");
    (crate::ids::is_id("key", &id) && secret.len() >= 32).then_some(id)
}

/// A new project key: the record to store and the key to show once.
pub fn new_api_key(project: &str, now: Millis) -> (ApiKeyRecord, String) {
    let id = crate::ids::new_id("key", now);
    let suffix = id.trim_start_matches("key_");
    let key = format!("{KEY_PREFIX}{suffix}_{}", crate::ids::random_token(32));
    let record = ApiKeyRecord {
        id,
        project_id: project.to_string(),
        key_hash: sha256_hex(&key),
        created_at: now,
    };
    (record, key)
}

/// A project id: 1–64 of `A-Z a-z 0-9 _ - .`.
pub fn check_project_id(project: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&project.len())
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest {
            code: "invalid_project",
            message: "a project id is 1 to 64 of A-Z, a-z, 0-9, '_', '-', '.'".into(),
            field: Some("project".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(caller.authorize("acme").is_ok());
        assert!(matches!(
            caller.authorize("globex"),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(caller.require_admin(), Err(ApiError::Forbidden)));
        assert!(Caller::Admin.authorize("anything").is_ok());
    }
}

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use keebai_protocol::Scope;
use secrecy::SecretString;

use super::{ApiError, AppState};
use crate::domain::AccountId;
use crate::store::Principal;

/// The account a request acts for, from its `Authorization: Bearer kbai_pk_…` header.
/// Missing, malformed, unknown and revoked tokens are all the same 401.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(Principal);

impl Authenticated {
    pub fn account(&self) -> AccountId {
        self.0.account
    }

    /// 403 `INSUFFICIENT_SCOPE` unless the token holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<AccountId, ApiError> {
        if self.0.scopes.contains(scope) {
            Ok(self.0.account)
        } else {
            Err(ApiError::InsufficientScope(scope))
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| SecretString::from(token.trim()))
            .ok_or(ApiError::Unauthenticated)?;
        let principal = state.store.authenticate(&token).await?.ok_or(ApiError::Unauthenticated)?;
        Ok(Self(principal))
    }
}

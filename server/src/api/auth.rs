use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use keebai_protocol::Scope;
use secrecy::SecretString;

use super::{ApiError, AppState};
use crate::domain::AccountId;
use crate::store::Principal;

/// The account a request acts for, from its `Authorization: Bearer kbai_pk_…` header.
/// Missing, malformed, unknown and revoked tokens are all the same 401; a client that fails
/// too often gets 429 for a while (see [`super::limit`]).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(Principal);

impl Authenticated {
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
        // The TCP peer (absent for calls from inside the process).
        let client = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if let Some(client) = client {
            state.auth_failures.check(client).map_err(ApiError::TooManyAuthFailures)?;
        }
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| SecretString::from(token.trim()));
        let principal = match token {
            Some(token) => state.store.authenticate(&token).await?,
            None => None,
        };
        match (principal, client) {
            (Some(principal), _) => Ok(Self(principal)),
            (None, Some(client)) => match state.auth_failures.fail(client) {
                Ok(()) => Err(ApiError::Unauthenticated),
                Err(wait) => Err(ApiError::TooManyAuthFailures(wait)),
            },
            (None, None) => Err(ApiError::Unauthenticated),
        }
    }
}

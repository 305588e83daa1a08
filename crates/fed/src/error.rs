//! What can go wrong in accounts and OAuth.

/// An error of the identity layer.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The input is not acceptable; the message is for the person who sent it.
    #[error("{0}")]
    Invalid(String),
    /// An OAuth protocol error (RFC 6749 §5.2 and friends).
    #[error("{0}")]
    OAuth(#[from] OAuthError),
    /// Too many attempts: try again after the given seconds.
    #[error("too many attempts; try again in {retry_after} seconds")]
    RateLimited { retry_after: i64 },
    /// Something that should not happen (no randomness, a corrupt record).
    #[error("internal error: {0}")]
    Internal(String),
}

/// An OAuth error response: the `error` code, a description, and the HTTP
/// status it is sent with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: u16,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> OAuthError {
        let status = match code {
            "invalid_client" => 401,
            "invalid_token" => 401,
            "insufficient_scope" => 403,
            "server_error" => 500,
            _ => 400,
        };
        OAuthError {
            code,
            description: description.into(),
            status,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_grant", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_client", d)
    }
}

pub type Result<T, E = FedError> = std::result::Result<T, E>;

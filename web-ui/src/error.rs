//! What the API answers when something goes wrong: an HTTP status and a
//! JSON error object. SQL errors carry the SQLSTATE pgwire would send.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tributary_executor::ExecError;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A statement failed: the engine's error, with where in the SQL it is.
    #[error("{message}")]
    Sql {
        /// The SQLSTATE, as pgwire reports it.
        sqlstate: &'static str,
        /// The engine's message.
        message: String,
        /// 1-based character position in the SQL text, when known.
        position: Option<usize>,
    },
    /// The request itself is wrong (not the SQL in it).
    #[error("{0}")]
    BadRequest(String),
    /// The body was refused before it was read as a request: not JSON,
    /// not the request's shape, or too large (413).
    #[error("{message}")]
    Rejected {
        /// The status the rejection carries.
        status: StatusCode,
        /// Why.
        message: String,
    },
    /// The server could not render what it has.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// `error`, raised by `sql`.
    pub fn sql(error: &ExecError, sql: &str) -> Self {
        let message = error.to_string();
        Self::Sql {
            sqlstate: error.sqlstate(),
            position: tributary_executor::error::position_in(&message, sql),
            message,
        }
    }
}

/// The JSON body of an error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub message: String,
    /// The SQLSTATE, for SQL errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<&'static str>,
    /// 1-based character position in the SQL, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

impl ApiError {
    /// The HTTP status it is answered with. A statement that failed is a
    /// request understood and refused (400), as a database answers it;
    /// internal engine errors (SQLSTATE class XX) are still 500.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Sql { sqlstate, .. } if sqlstate.starts_with("XX") => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Sql { .. } | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Rejected { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as the JSON object the API sends.
    pub fn body(&self) -> ErrorBody {
        match self {
            Self::Sql {
                sqlstate,
                message,
                position,
            } => ErrorBody {
                message: message.clone(),
                sqlstate: Some(sqlstate),
                position: *position,
            },
            Self::BadRequest(message)
            | Self::Internal(message)
            | Self::Rejected { message, .. } => ErrorBody {
                message: message.clone(),
                sqlstate: None,
                position: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(serde_json::json!({ "error": self.body() })),
        )
            .into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::Rejected {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

//! The error shape every API answers with: a code, a message and the field it concerns.

use serde::Serialize;

/// A rejected input: which field, what is wrong with it, and a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new("invalid_field", field, message)
    }
}

/// The JSON body of an API error: `{"error":{"code","message","field"?}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub error: ProblemBody,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProblemBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(code: impl Into<String>, message: impl Into<String>, field: Option<String>) -> Self {
        Self {
            error: ProblemBody {
                code: code.into(),
                message: message.into(),
                field,
            },
        }
    }
}

impl From<&FieldError> for Problem {
    fn from(e: &FieldError) -> Self {
        // A body-level error (the body is not an object) names no field.
        let field = (!e.field.is_empty()).then(|| e.field.clone());
        Problem::new(e.code, e.message.clone(), field)
    }
}

/// What a caught panic said, for a log line or a dead-letter reason (its first 200
/// characters; a panic message never carries a secret, but it may be long).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    text.chars().take(200).collect()
}

/// An error and its causes, `outer: inner: innermost`, for a log line. The AWS SDK's
/// errors say little at the top ("dispatch failure") and the reason below.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

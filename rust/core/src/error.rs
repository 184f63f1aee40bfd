//! The one error type of the core. Every fallible call returns `Result<_, ItbError>`;
//! nothing in the core panics on input. Each variant names the offending field and,
//! where there is one, the allowed range, so bindings can show it verbatim.

use thiserror::Error;

/// Error returned by every fallible core call. A call that returns an error leaves the
/// pump exactly as it was.
///
/// `field` names the parameter of the call that was refused (or a path into it, like
/// `steps[2].ug_per_day`), never a parameter the caller did not pass; when no argument is at
/// fault and the pump's state refuses the call (end of service, an empty reservoir, already
/// suspended), `field` is the name of the call itself (`bolus`, `suspend`, …).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ItbError {
    /// A value is malformed or out of range (NaN, negative, time in the past, …).
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    /// A program or bolus would exceed the pump model's rate limits.
    #[error("cannot program {field}: {message}")]
    Programming { field: String, message: String },
    /// Reservoir misuse: overfill, delivery from an empty reservoir.
    #[error("{field}: {message}")]
    Reservoir { field: String, message: String },
    /// The battery reached end of service: delivery has stopped for good.
    #[error(
        "end of service: {field} is refused; the battery reached EOS and delivery stopped for good"
    )]
    EndOfService { field: String },
    /// Snapshot bytes are corrupt, truncated, foreign or of an unknown version.
    #[error("snapshot: {message}")]
    Snapshot { message: String },
}

/// Shorthand for results of core calls.
pub type Result<T> = std::result::Result<T, ItbError>;

impl ItbError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ItbError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn programming(field: impl Into<String>, message: impl Into<String>) -> Self {
        ItbError::Programming {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn reservoir(field: impl Into<String>, message: impl Into<String>) -> Self {
        ItbError::Reservoir {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn end_of_service(field: impl Into<String>) -> Self {
        ItbError::EndOfService {
            field: field.into(),
        }
    }
    pub fn snapshot(message: impl Into<String>) -> Self {
        ItbError::Snapshot {
            message: message.into(),
        }
    }
    /// The same error about another field: a call whose argument caused an error deeper down
    /// reports its own parameter (snapshot errors have no field and stay as they are).
    pub fn in_field(self, field: impl Into<String>) -> Self {
        let field = field.into();
        match self {
            ItbError::Validation { message, .. } => ItbError::Validation { field, message },
            ItbError::Programming { message, .. } => ItbError::Programming { field, message },
            ItbError::Reservoir { message, .. } => ItbError::Reservoir { field, message },
            ItbError::EndOfService { .. } => ItbError::EndOfService { field },
            e @ ItbError::Snapshot { .. } => e,
        }
    }
    /// The field the error is about (`data` for snapshot errors: the bytes given to restore).
    pub fn field(&self) -> &str {
        match self {
            ItbError::Validation { field, .. }
            | ItbError::Programming { field, .. }
            | ItbError::Reservoir { field, .. }
            | ItbError::EndOfService { field } => field,
            ItbError::Snapshot { .. } => "data",
        }
    }
}

/// Check `lo <= value <= hi`, else a validation error naming `field` and the range.
pub fn check_range(field: &str, value: i64, lo: i64, hi: i64, unit: &str) -> Result<i64> {
    if value < lo || value > hi {
        return Err(ItbError::validation(
            field,
            format!("{value} {unit} is outside the allowed range {lo} to {hi} {unit}"),
        ));
    }
    Ok(value)
}

//! The Kafka record value for a task: a versioned JSON envelope. A record only
//! says "look at this row"; the worker reads name and arguments from the row it
//! claims, so the envelope's copies are informational.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Current envelope version (`v`).
pub const ENVELOPE_VERSION: u32 = 1;

/// `{v: 1, id, task, args, kwargs, queue, attempt, submitted_at}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope version; only [`ENVELOPE_VERSION`] is understood.
    pub v: u32,
    /// Task id (also the record key).
    pub id: String,
    /// Task (handler) name.
    pub task: String,
    /// Positional arguments, a JSON array kept as sent.
    pub args: Box<RawValue>,
    /// Keyword arguments, a JSON object kept as sent.
    pub kwargs: Box<RawValue>,
    /// Queue name.
    pub queue: String,
    /// Attempts so far when the record was produced (informational only).
    pub attempt: i32,
    /// Submission time, RFC 3339.
    pub submitted_at: chrono::DateTime<chrono::Utc>,
}

/// Why a record is not a usable envelope; the text goes into the dead-letter header.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The record had no value.
    #[error("record has no value")]
    Empty,
    /// The value is not JSON or lacks a required field.
    #[error("invalid envelope: {0}")]
    Invalid(String),
    /// `v` is not a version this build understands.
    #[error("unknown envelope version {0}")]
    UnknownVersion(u32),
}

impl Envelope {
    /// Parses a record value.
    ///
    /// Errors: [`EnvelopeError`] when the value is missing, not JSON, misses a
    /// field, or carries an unknown version.
    pub fn decode(value: Option<&[u8]>) -> Result<Self, EnvelopeError> {
        let bytes = value.ok_or(EnvelopeError::Empty)?;
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Invalid(e.to_string()))?;
        if env.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnknownVersion(env.v));
        }
        if env.id.is_empty() {
            return Err(EnvelopeError::Invalid("empty id".into()));
        }
        Ok(env)
    }

    /// Serialises to the record value.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelope serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_records() {
        let raw = br#"{"v":1,"id":"a","task":"add","args":[1, 2],"kwargs":{},"queue":"default","attempt":0,"submitted_at":"2026-01-01T00:00:00Z"}"#;
        let env = Envelope::decode(Some(raw)).unwrap();
        assert_eq!(env.args.get(), "[1, 2]");
        assert_eq!(Envelope::decode(Some(&env.encode())).unwrap().id, "a");
        assert!(matches!(Envelope::decode(None), Err(EnvelopeError::Empty)));
        assert!(matches!(Envelope::decode(Some(b"nope")), Err(EnvelopeError::Invalid(_))));
        let v2 = br#"{"v":2,"id":"a","task":"add","args":[],"kwargs":{},"queue":"q","attempt":0,"submitted_at":"2026-01-01T00:00:00Z"}"#;
        assert!(matches!(Envelope::decode(Some(v2)), Err(EnvelopeError::UnknownVersion(2))));
    }
}

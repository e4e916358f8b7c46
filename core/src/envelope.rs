//! The Kafka record value for a task: a versioned JSON envelope. A record only
//! says "look at this row"; the worker reads name and arguments from the row it
//! claims, so the envelope's copies are informational.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::names::TaskKey;

/// Current envelope version (`v`).
pub(crate) const ENVELOPE_VERSION: u32 = 1;

/// `{v: 1, id, task, args, kwargs, queue, attempt, submitted_at}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope version; only [`ENVELOPE_VERSION`] is understood.
    pub v: u32,
    /// The task's stored key (also the record key).
    pub id: TaskKey,
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
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelope serialises")
    }

    /// The most bytes [`Envelope::encode`] gives for this task over all its
    /// records: any attempt number (10 digits at most) and any submission time
    /// (nanosecond fraction). `args` and `kwargs` are JSON text, embedded as
    /// is; the other fields are JSON strings. Computed on a copy with empty
    /// arguments, so a large task is not copied to be measured.
    pub fn max_encoded_len(id: &TaskKey, task: &str, args: &str, kwargs: &str, queue: &str) -> usize {
        let empty = |text: &str| RawValue::from_string(text.to_string()).expect("literal JSON");
        let (args0, kwargs0) = ("[]", "{}");
        let widest = Envelope {
            v: ENVELOPE_VERSION,
            id: id.clone(),
            task: task.to_string(),
            args: empty(args0),
            kwargs: empty(kwargs0),
            queue: queue.to_string(),
            attempt: i32::MIN, // the longest number: "-2147483648"
            submitted_at: chrono::DateTime::from_timestamp(253_402_300_799, 999_999_999).expect("9999-12-31"),
        };
        widest.encode().len() - args0.len() - kwargs0.len() + args.len() + kwargs.len()
    }
}

#[cfg(test)]
mod fuzz;

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

    /// The upgrade rule (docs/deployment.md, "Upgrades"): an envelope from a
    /// newer writer, with fields this release does not know, still decodes.
    #[test]
    fn envelopes_with_fields_from_a_newer_release_decode() {
        let newer = br#"{"v":1,"id":"a","task":"add","args":[1],"kwargs":{},"queue":"default","attempt":2,
            "submitted_at":"2026-01-01T00:00:00Z","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tenant":{"id":"t1"}}"#;
        let env = Envelope::decode(Some(newer)).unwrap();
        assert_eq!((env.id.as_str(), env.attempt, env.args.get()), ("a", 2, "[1]"));
    }

    #[test]
    fn max_encoded_len_bounds_every_record_of_a_task_and_is_tight() {
        let (args, kwargs) = (r#"[1, "\u0000", {"a": [2]}]"#, r#"{"k": "v"}"#);
        let env = |attempt: i32, nanos: u32| Envelope {
            v: ENVELOPE_VERSION,
            id: "task-1".into(),
            task: "echo".into(),
            args: RawValue::from_string(args.into()).unwrap(),
            kwargs: RawValue::from_string(kwargs.into()).unwrap(),
            queue: "emails".into(),
            attempt,
            submitted_at: chrono::DateTime::from_timestamp(1_800_000_000, nanos).unwrap(),
        };
        let bound = Envelope::max_encoded_len(&"task-1".into(), "echo", args, kwargs, "emails");
        for (attempt, nanos) in [(0, 0), (3, 120_000), (101, 123_456_789), (i32::MAX, 999_999_999)] {
            assert!(env(attempt, nanos).encode().len() <= bound, "attempt {attempt}");
        }
        // The bound is the widest record: a 10-digit attempt and a 9-digit fraction, plus the sign.
        assert_eq!(env(i32::MAX, 999_999_999).encode().len() + 1, bound);
    }
}

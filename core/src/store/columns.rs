//! How the model's enums are stored: as `text` columns with a CHECK listing
//! the names (not PostgreSQL enum types, which a rolling deploy cannot
//! extend while old binaries run). Each type is encoded and decoded by its
//! `as_str` / `parse`, the one place its names are spelled.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

use crate::model::{AttemptOutcome, TaskStatus, WorkerState};

/// Implements `sqlx::Type`, `Encode` and `Decode` for a text-stored enum
/// `fn as_str(&self) -> &str`, given its parser (`&str -> Option<Self>`).
macro_rules! text_column {
    ($t:ty, $parse:expr) => {
        impl Type<Postgres> for $t {
            fn type_info() -> PgTypeInfo {
                <str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as Type<Postgres>>::compatible(ty)
            }
        }
        impl Encode<'_, Postgres> for $t {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
        impl<'r> Decode<'r, Postgres> for $t {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let s = <&str as Decode<Postgres>>::decode(value)?;
                ($parse)(s).ok_or_else(|| format!("unknown {} {s:?}", stringify!($t)).into())
            }
        }
    };
}

// A status written by a newer release reads verbatim (`TaskStatus::Other`).
text_column!(TaskStatus, |s| Some(TaskStatus::from_stored(s)));
// A state written by a newer release reads as `joining`.
text_column!(WorkerState, |s| Some(WorkerState::parse(s)));
text_column!(AttemptOutcome, AttemptOutcome::parse);

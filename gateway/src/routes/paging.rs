//! What the paginated listings (`GET /tasks`, `GET /workers`) share: reading
//! their query strings into problem documents, and their keyset cursors.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;

use crate::problem::ApiError;

/// The query, or a 400 naming whichever of `fields` serde's message mentions
/// (`query` when none).
pub fn query<T>(query: Result<Query<T>, QueryRejection>, fields: &[&str]) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| {
        let text = e.body_text();
        let field = fields
            .iter()
            .find(|f| text.contains(&format!("`{f}`")) || text.contains(&format!("{f}:")))
            .copied()
            .unwrap_or("query");
        ApiError::bad_request(field, text)
    })
}

/// A `limit` parameter: 1 to 500, 50 when absent; a 400 naming `limit` otherwise.
pub fn limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit", "limit must be 1 to 500"));
    }
    Ok(limit)
}

/// A `cursor` parameter: the digits of a positive number, as `next_cursor`
/// gives them (at most 18, so it fits an i64); anything else is a 400.
pub fn cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    match cursor {
        None => Ok(None),
        Some(c) if !c.is_empty() && c.len() <= 18 && c.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(c.parse().expect("at most 18 digits fit an i64")))
        }
        Some(_) => Err(ApiError::bad_request("cursor", "cursor is not one we issued")),
    }
}

//! Pure checks on client input: ids, task names and JSON nesting depth.

/// Longest client-chosen task id, in characters.
pub const MAX_TASK_ID_LEN: usize = 128;

/// What [`is_valid_task_id`] accepts, for error messages.
pub const TASK_ID_RULE: &str = "1-128 characters of letters, digits and ._:-, other than . and ..";

/// True when `id` is 1 to 128 characters of ASCII letters, digits and `._:-`,
/// and neither `.` nor `..`: clients normalise those path segments away, so
/// `/tasks/..` could never reach the task.
pub fn is_valid_task_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_TASK_ID_LEN && id.bytes().all(is_id_byte) && id != "." && id != ".."
}

/// True when `name` is 1 to `max_len` characters of ASCII letters, digits and
/// `._:-`, starting with a letter.
pub fn is_valid_task_name(name: &str, max_len: usize) -> bool {
    !name.is_empty()
        && name.len() <= max_len
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(is_id_byte)
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// Deepest nesting of arrays and objects in a JSON text (`1` gives 0, `[]` 1,
/// `{"a":[1]}` 2). Brackets inside strings are ignored. The text need not be
/// valid JSON: this runs before parsing so that a deeply nested body is refused
/// cheaply.
pub fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_task_id("12345abc"));
        assert!(is_valid_task_id("a.b_c:d-e"));
        assert!(!is_valid_task_id(""));
        assert!(!is_valid_task_id("has space"));
        assert!(!is_valid_task_id("slash/"));
        assert!(!is_valid_task_id(&"x".repeat(129)));
        assert!(is_valid_task_id(&"x".repeat(128)));
        assert!(!is_valid_task_id(".") && !is_valid_task_id(".."));
        assert!(is_valid_task_id("...") && is_valid_task_id("..a") && is_valid_task_id(".a"));
    }

    #[test]
    fn names() {
        assert!(is_valid_task_name("multiply", 64));
        assert!(is_valid_task_name("billing.send_invoice", 64));
        assert!(!is_valid_task_name("1abc", 64));
        assert!(!is_valid_task_name("a b", 64));
        assert!(!is_valid_task_name(&"a".repeat(65), 64));
    }

    #[test]
    fn depth_ignores_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(b"[]"), 1);
        assert_eq!(json_depth(br#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(json_depth(br#"["[[[[", "\"[["]"#), 1);
    }
}

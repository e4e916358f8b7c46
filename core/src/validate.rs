//! Pure checks on client input that are not names (those are the types of
//! [`crate::names`]): JSON nesting depth.

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
    fn depth_ignores_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(b"[]"), 1);
        assert_eq!(json_depth(br#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(json_depth(br#"["[[[[", "\"[["]"#), 1);
    }
}

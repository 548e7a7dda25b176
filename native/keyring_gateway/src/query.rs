//! Query strings: `a=1&b=two%20words`, percent- and `+`-decoded, bounded.

/// Most parameters a query may have.
pub const MAX_PARAMS: usize = 64;
/// Longest query string accepted, bytes.
pub const MAX_QUERY: usize = 8 * 1024;

/// Why a query string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Longer than [`MAX_QUERY`] or more than [`MAX_PARAMS`] parameters.
    #[error("the query string is too long")]
    TooLong,
    /// A `%` not followed by two hex digits.
    #[error("the query string has a malformed percent escape")]
    BadEscape,
    /// A decoded name or value is not UTF-8.
    #[error("the query string is not UTF-8 once decoded")]
    NotUtf8,
}

/// Decodes `query` (without the `?`) into name/value pairs, in order.
pub fn parse(query: &str) -> Result<Vec<(String, String)>, QueryError> {
    if query.len() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    let mut out = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_PARAMS {
            return Err(QueryError::TooLong);
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        out.push((decode(name)?, decode(value)?));
    }
    Ok(out)
}

/// The first value of `name`.
pub fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> Result<String, QueryError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(QueryError::BadEscape)?;
                let hi = (hex[0] as char).to_digit(16).ok_or(QueryError::BadEscape)?;
                let lo = (hex[1] as char).to_digit(16).ok_or(QueryError::BadEscape)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let q = parse("types=presence,mesh&subject=a%20b&x&y=1+2").unwrap();
        assert_eq!(get(&q, "types"), Some("presence,mesh"));
        assert_eq!(get(&q, "subject"), Some("a b"));
        assert_eq!(get(&q, "x"), Some(""));
        assert_eq!(get(&q, "y"), Some("1 2"));
        assert_eq!(get(&q, "z"), None);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_escapes_and_bad_utf8_and_floods() {
        assert_eq!(parse("a=%"), Err(QueryError::BadEscape));
        assert_eq!(parse("a=%4"), Err(QueryError::BadEscape));
        assert_eq!(parse("a=%zz"), Err(QueryError::BadEscape));
        assert_eq!(parse("a=%ff"), Err(QueryError::NotUtf8));
        let flood = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert_eq!(parse(&flood), Err(QueryError::TooLong));
        assert_eq!(parse(&"a".repeat(MAX_QUERY + 1)), Err(QueryError::TooLong));
    }
}

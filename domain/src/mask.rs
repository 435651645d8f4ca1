//! Masking for logs: cryptograms, tokens and secrets never reach a log line whole.

/// Keeps the first 4 and last 2 characters: `tk_1…9f`. Short values are fully hidden.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 10 {
        return "***".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail}")
}

/// A connection URL with its password replaced by `***` (`postgres://u:***@host/db`), for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks() {
        assert_eq!(super::mask("tk_0123456789abcdef"), "tk_0…ef");
        assert_eq!(super::mask("short"), "***");
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(
            super::redact_url("postgres://postgres@127.0.0.1/billing"),
            "postgres://postgres@127.0.0.1/billing"
        );
    }
}

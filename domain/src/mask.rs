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

#[cfg(test)]
mod tests {
    #[test]
    fn masks() {
        assert_eq!(super::mask("tk_0123456789abcdef"), "tk_0…ef");
        assert_eq!(super::mask("short"), "***");
    }
}

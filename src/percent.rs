//! Percent-encoding for the URLs we build ourselves (a `next=` value, an `otpauth://` link):
//! RFC 3986's unreserved characters stay, and so do the extra bytes a caller names.

pub fn encode(text: &str, also_keep: &[u8]) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b if also_keep.contains(&b) => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unreserved_stay_the_rest_is_encoded() {
        assert_eq!(
            super::encode("/console/queue?q=a b&x=é", b"/"),
            "/console/queue%3Fq%3Da%20b%26x%3D%C3%A9"
        );
        assert_eq!(
            super::encode("li.lei@example.com", b""),
            "li.lei%40example.com"
        );
    }
}

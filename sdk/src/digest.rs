//! sha256 digests in OCI's `sha256:<hex>` form.

use sha2::{Digest, Sha256};

use crate::error::SdkError;

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Checks that `digest` is `sha256:<64 lowercase hex>` and returns the hex part.
pub fn validate(digest: &str) -> Result<&str, SdkError> {
    match digest.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(h)
        }
        _ => Err(SdkError::Digest(digest.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_validates() {
        let d = sha256(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(validate(&d).unwrap().len(), 64);
        assert!(validate("sha256:ABC").is_err());
        assert!(validate("md5:00").is_err());
        assert!(validate(&d.to_uppercase()).is_err());
    }
}

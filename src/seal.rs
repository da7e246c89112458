//! Sealing personal data at rest: AES-256-GCM under a key derived (HKDF-
//! SHA256) from the server secret, with a fresh random nonce per value and
//! the row's id as associated data, so a sealed value copied onto another
//! row does not open. A copy of the database alone reveals nothing.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

const NONCE_LEN: usize = 12;

/// Seals and opens; cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl Sealer {
    /// The sealer for `purpose` under the server's key material.
    pub fn derive(key_material: &[u8], purpose: &str) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"anpi seal"), key_material)
            .expand(purpose.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: Aes256Gcm::new_from_slice(&key).expect("AES-256 takes a 32-byte key"),
        }
    }

    /// Nonce followed by ciphertext and tag.
    pub fn seal(&self, plain: &[u8], row: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system gives randomness");
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: row.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message this size");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The plain value, or `None` when the value was not sealed for `row`
    /// under this key (tampered, moved, or another server's).
    pub fn open(&self, sealed: &[u8], row: &str) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: row.as_bytes(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_for_its_row_and_key() {
        let sealer = Sealer::derive(&[1; 32], "contact");
        let sealed = sealer.seal(b"090-1234-5678", "req-1");
        assert!(!sealed.windows(4).any(|w| w == b"1234"));
        assert_eq!(sealer.open(&sealed, "req-1").unwrap(), b"090-1234-5678");
        assert_eq!(sealer.open(&sealed, "req-2"), None, "moved to another row");
        let other = Sealer::derive(&[2; 32], "contact");
        assert_eq!(other.open(&sealed, "req-1"), None, "another server's key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open(&tampered, "req-1"), None);
        assert_ne!(
            sealer.seal(b"x", "r"),
            sealer.seal(b"x", "r"),
            "fresh nonce"
        );
    }
}

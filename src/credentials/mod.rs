//! Credentials, apart from any protocol: password hashing (argon2id) on its own thread, session tokens (only their
//! SHA-256 is stored), TOTP and recovery codes for two-factor login, and TLS certificate/key checks. The API
//! (`http`), the command line and first-boot provisioning all use these; none of them reaches into another for them.

mod password;
mod pem;
pub mod totp;

pub use password::{
    LANE_CAPACITY, Lane, PasswordWorkError, hash_password, new_token, password_work, token_hash, verify_password,
};
pub use pem::{PemProblem, check_pem_pair, fingerprint};

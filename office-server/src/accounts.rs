//! Creating accounts from the command line: the first administrator.

use jiff::Timestamp;

use crate::api::check_new_credentials;
use crate::auth::{PasswordError, hash_password, random_token};
use crate::storage::{NewAccount, Role, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("an account with the login {0:?} already exists")]
    LoginTaken(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Storage(StorageError),
}

/// A password for a new account that nobody chose: 120 random bits, easy to copy.
pub fn generated_password() -> String {
    random_token().chars().take(20).collect()
}

/// Creates an administrator; returns its id.
pub fn create_admin(
    storage: &dyn Storage,
    login: &str,
    display_name: &str,
    password: &str,
) -> Result<i64, AccountError> {
    check_new_credentials(login, password).map_err(AccountError::Invalid)?;
    let account = NewAccount {
        login: login.to_string(),
        display_name: display_name.to_string(),
        password_hash: hash_password(password)?,
        role: Role::Admin,
        created_at: Timestamp::now(),
    };
    storage
        .create_account(&account)
        .map_err(|error| match error {
            StorageError::AlreadyExists(_) => AccountError::LoginTaken(login.to_string()),
            other => AccountError::Storage(other),
        })
}

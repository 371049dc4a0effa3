//! Accounts and sign-in: creating an account, resetting a password, signing in and out.

use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};

use super::audit;
use crate::auth::{
    LoginThrottle, PasswordError, decoy_hash, hash_password, random_token, token_digest,
    verify_password,
};
use crate::domain::{DisplayName, Login, Password};
use crate::storage::{
    Account, AccountMail, AuditAction, AuditEvent, MailMode, NewAccount, Role, Storage,
    StorageError,
};

#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("an account with this login already exists")]
    LoginTaken,
    #[error("the department, section or employee of the role does not exist")]
    ScopeNotFound,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Storage(StorageError),
}

/// A new account, its fields already parsed.
#[derive(Debug, Clone)]
pub struct NewAccountRequest {
    pub login: Login,
    pub display_name: DisplayName,
    pub password: Password,
    pub role: Role,
}

/// Hashes the password and stores the account; returns its id.
pub fn create_account(
    db: &dyn Storage,
    request: &NewAccountRequest,
    by: Option<i64>,
    now: Timestamp,
) -> Result<i64, CreateAccountError> {
    let account = NewAccount {
        login: request.login.as_str().to_string(),
        display_name: request.display_name.as_str().to_string(),
        password_hash: hash_password(request.password.expose())?,
        role: request.role,
        created_at: now,
    };
    let id = db.create_account(&account).map_err(|error| match error {
        StorageError::AlreadyExists(_) => CreateAccountError::LoginTaken,
        StorageError::NotFound(_) => CreateAccountError::ScopeNotFound,
        other => CreateAccountError::Storage(other),
    })?;
    tracing::info!(id, ?by, role = request.role.name(), "account created");
    audit::changed(
        db,
        by,
        AuditAction::AccountCreate,
        format!("{} ({})", request.login, request.role.name()),
    )
    .map_err(CreateAccountError::Storage)?;
    Ok(id)
}

/// A password for a new account that nobody chose: 120 random bits, easy to copy.
pub fn generated_password() -> String {
    random_token().chars().take(20).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    #[error("no such account")]
    NotFound,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Storage(StorageError),
}

/// Sets a new password; the account's sessions end.
pub fn reset_password(
    db: &dyn Storage,
    account_id: i64,
    password: &Password,
    by: i64,
) -> Result<(), ResetPasswordError> {
    let hash = hash_password(password.expose())?;
    db.set_password(account_id, &hash)
        .map_err(|error| match error {
            StorageError::NotFound(_) => ResetPasswordError::NotFound,
            other => ResetPasswordError::Storage(other),
        })?;
    tracing::info!(account = account_id, by, "password reset");
    audit::changed(
        db,
        Some(by),
        AuditAction::PasswordReset,
        format!("учетная запись #{account_id}"),
    )
    .map_err(ResetPasswordError::Storage)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum SetMailError {
    #[error("not an e-mail address")]
    BadAddress,
    #[error("no such account")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Sets where the account's e-mail notifications go (`email` blank: nowhere) and how; the
/// change is audited with the address, so a redirected account's notifications can be traced.
pub fn set_mail(
    db: &dyn Storage,
    account_id: i64,
    email: &str,
    mode: MailMode,
    by: i64,
) -> Result<(), SetMailError> {
    let email = email.trim();
    let email = match email {
        "" => None,
        text => Some(
            text.parse::<lettre::Address>()
                .map_err(|_| SetMailError::BadAddress)?
                .to_string(),
        ),
    };
    let detail = format!(
        "учетная запись #{account_id}: {}, {}",
        email.as_deref().unwrap_or("без адреса"),
        mode.as_str()
    );
    let mail = AccountMail { email, mode };
    let audit = AuditEvent {
        at: Timestamp::now(),
        account_id: Some(by),
        action: AuditAction::AccountMail,
        visit_id: None,
        session_tag: String::new(),
        detail,
    };
    if !db.set_account_mail(account_id, &mail, &audit)? {
        return Err(SetMailError::NotFound);
    }
    tracing::info!(
        account = account_id,
        by,
        mode = mode.as_str(),
        "mail notifications set"
    );
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("too many attempts; try again in a minute")]
    Throttled,
    #[error("wrong login or password")]
    WrongCredentials,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A signed-in session: its account and the token for the cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: Account,
    pub token: String,
}

/// Checks a login and password and opens a session. Every attempt counts against the login's
/// normal form and the client's address; the work is the same whether the login exists, so
/// timing does not tell which do.
pub fn sign_in(
    db: &dyn Storage,
    throttle: &LoginThrottle,
    typed_login: &str,
    password: &Password,
    client: IpAddr,
    session_length: SignedDuration,
    now: Timestamp,
) -> Result<Session, SignInError> {
    // Logins are at most 64 characters: a longer key names no account, so the cap keeps the
    // throttle's memory bounded without letting two real logins share a bucket.
    let key: String = Login::normalise(typed_login)
        .chars()
        .take(Login::MAX_CHARS + 1)
        .collect();
    if !throttle.attempt(&key, client) {
        tracing::warn!(login = ?key, %client, "login throttled");
        metrics::counter!(crate::metrics::LOGIN_THROTTLED).increment(1);
        return Err(SignInError::Throttled);
    }
    let found = match Login::parse(typed_login) {
        Ok(login) => db.account_credentials(login.as_str())?,
        Err(_) => None,
    };
    let account = match found {
        Some((account, hash)) if verify_password(&hash, password.expose()) => account,
        Some(_) => {
            metrics::counter!(crate::metrics::LOGIN_FAILURES).increment(1);
            return Err(SignInError::WrongCredentials);
        }
        None => {
            verify_password(decoy_hash(), password.expose());
            metrics::counter!(crate::metrics::LOGIN_FAILURES).increment(1);
            return Err(SignInError::WrongCredentials);
        }
    };
    let token = random_token();
    db.create_session(&token_digest(&token), account.id, now, now + session_length)?;
    tracing::info!(account_id = account.id, "signed in");
    Ok(Session { account, token })
}

/// Ends the session of this token, if it is one.
pub fn sign_out(db: &dyn Storage, token: &str) -> Result<(), StorageError> {
    db.delete_session(&token_digest(token))
}

/// The account a session token belongs to, while the session lasts.
pub fn session_account(
    db: &dyn Storage,
    token: &str,
    now: Timestamp,
) -> Result<Option<Account>, StorageError> {
    db.session_account(&token_digest(token), now)
}

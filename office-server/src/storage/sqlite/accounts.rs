//! Accounts and sessions.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStorage, changed_one, instant, ms, unique};
use crate::storage::*;

fn role_from_row(
    role: &str,
    department_id: Option<i64>,
    section_id: Option<i64>,
    employee_id: Option<i64>,
) -> StorageResult<Role> {
    match (role, department_id, section_id, employee_id) {
        ("admin", ..) => Ok(Role::Admin),
        ("observer", ..) => Ok(Role::Observer),
        ("head", Some(id), None, _) => Ok(Role::Head {
            scope: Scope::Department(id),
        }),
        ("head", None, Some(id), _) => Ok(Role::Head {
            scope: Scope::Section(id),
        }),
        ("specialist", _, _, Some(employee_id)) => Ok(Role::Specialist { employee_id }),
        _ => Err(StorageError::Corrupt(format!("account role {role}"))),
    }
}

pub(super) const ACCOUNT_COLUMNS: &str =
    "a.id, a.login, a.display_name, a.role, a.department_id, a.section_id, a.employee_id";

pub(super) fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    account_at(row, 0)
}

/// The account whose [`ACCOUNT_COLUMNS`] begin at column `at`.
fn account_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Account> {
    let role: String = row.get(at + 3)?;
    let role = role_from_row(&role, row.get(at + 4)?, row.get(at + 5)?, row.get(at + 6)?).map_err(
        |e| {
            rusqlite::Error::FromSqlConversionFailure(
                at + 3,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        },
    )?;
    Ok(Account {
        id: row.get(at)?,
        login: row.get(at + 1)?,
        display_name: row.get(at + 2)?,
        role,
    })
}

impl AccountStore for SqliteStorage {
    fn create_account(&self, account: &NewAccount) -> StorageResult<i64> {
        let (department_id, section_id, employee_id) = match account.role {
            Role::Head {
                scope: Scope::Department(id),
            } => (Some(id), None, None),
            Role::Head {
                scope: Scope::Section(id),
            } => (None, Some(id), None),
            Role::Specialist { employee_id } => (None, None, Some(employee_id)),
            Role::Admin | Role::Observer => (None, None, None),
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO accounts (login, display_name, password_hash, role, department_id,
                                       section_id, employee_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    account.login,
                    account.display_name,
                    account.password_hash,
                    account.role.name(),
                    department_id,
                    section_id,
                    employee_id,
                    ms(account.created_at)
                ],
            )
            .map_err(|e| match unique("account")(e) {
                StorageError::NotFound(_) => {
                    StorageError::NotFound("department, section or employee")
                }
                other => other,
            })?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn account_credentials(&self, login: &str) -> StorageResult<Option<(Account, String)>> {
        let conn = self.reader()?;
        let found = conn
            .query_row(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = ?1"
                ),
                [login],
                |row| Ok((account_from_row(row)?, row.get::<_, String>(7)?)),
            )
            .optional()?;
        Ok(found)
    }

    fn accounts(&self) -> StorageResult<Vec<AccountSummary>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS}, a.created_at, a.email, a.mail_mode
                 FROM accounts a ORDER BY a.login"
            ))?
            .query_map([], |row| {
                Ok((
                    account_from_row(row)?,
                    row.get::<_, i64>(7)?,
                    row.get::<_, Option<String>>(8)?,
                    row.get::<_, String>(9)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(account, created_at, email, mode)| {
                Ok(AccountSummary {
                    account,
                    created_at: instant(created_at)?,
                    mail: AccountMail {
                        email,
                        mode: MailMode::parse(&mode)
                            .ok_or_else(|| StorageError::Corrupt(format!("mail mode {mode}")))?,
                    },
                })
            })
            .collect()
    }

    fn set_password(&self, account_id: i64, password_hash: &str) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET password_hash = ?1 WHERE id = ?2",
                params![password_hash, account_id],
            )?;
            changed_one(changed, "account")?;
            tx.execute("DELETE FROM sessions WHERE account_id = ?1", [account_id])?;
            Ok(())
        })
    }

    fn create_session(
        &self,
        token_hash: &[u8; 32],
        account_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<()> {
        self.write(|tx| {
            // Sessions that have run out are of no use to anyone: sweep them on the way.
            tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [ms(now)])?;
            tx.execute(
                "INSERT INTO sessions (token_hash, account_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&token_hash[..], account_id, ms(now), ms(expires_at)],
            )?;
            Ok(())
        })
    }

    fn session_account(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<Account>> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM sessions s JOIN accounts a ON a.id = s.account_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2"
            ))?
            .query_row(params![&token_hash[..], ms(now)], account_from_row)
            .optional()?;
        Ok(found)
    }

    fn delete_session(&self, token_hash: &[u8; 32]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                [&token_hash[..]],
            )?;
            Ok(())
        })
    }

    fn set_deputy(
        &self,
        head_id: i64,
        deputy: Option<(i64, Timestamp)>,
        audit: &AuditEvent,
    ) -> StorageResult<()> {
        self.write(|tx| {
            match deputy {
                Some((deputy_id, until)) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO deputies (head_id, deputy_id, until, named_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![head_id, deputy_id, ms(until), ms(audit.at)],
                    )?;
                }
                None => {
                    tx.execute("DELETE FROM deputies WHERE head_id = ?1", [head_id])?;
                }
            }
            super::audit::insert_event(tx, audit)?;
            Ok(())
        })
    }

    fn deputy_of(&self, head_id: i64, now: Timestamp) -> StorageResult<Option<Deputy>> {
        Ok(self
            .deputies("d.head_id = ?1", head_id, now)?
            .into_iter()
            .next())
    }

    fn covered_by(&self, deputy_id: i64, now: Timestamp) -> StorageResult<Vec<Deputy>> {
        self.deputies("d.deputy_id = ?1", deputy_id, now)
    }
}

impl SqliteStorage {
    /// Covers not ended at `now` whose `condition` holds for `id`.
    fn deputies(&self, condition: &str, id: i64, now: Timestamp) -> StorageResult<Vec<Deputy>> {
        let conn = self.reader()?;
        let deputy_columns = ACCOUNT_COLUMNS.replace("a.", "b.");
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS}, {deputy_columns}, d.until
                 FROM deputies d
                 JOIN accounts a ON a.id = d.head_id
                 JOIN accounts b ON b.id = d.deputy_id
                 WHERE {condition} AND d.until > ?2
                 ORDER BY a.display_name, a.id"
            ))?
            .query_map(params![id, ms(now)], |row| {
                Ok((
                    account_at(row, 0)?,
                    account_at(row, 7)?,
                    row.get::<_, i64>(14)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(head, deputy, until)| {
                Ok(Deputy {
                    head,
                    deputy,
                    until: instant(until)?,
                })
            })
            .collect()
    }
}

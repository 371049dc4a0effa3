//! Visitors' accounts: people signed in through the city portal, their visits and sessions,
//! and the sign-ins under way.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::feedback::sent_feedback;
use super::{SqliteStorage, instant, ms, optional_instant};
use crate::reports::visit_instant_ms;
use crate::storage::*;

fn name_from(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<VisitorName> {
    Ok(VisitorName {
        family_name: row.get(first)?,
        given_name: row.get(first + 1)?,
        middle_name: row.get(first + 2)?,
    })
}

impl VisitorStore for SqliteStorage {
    fn begin_sign_in(
        &self,
        state_digest: &[u8; 32],
        pending: &PendingSignIn,
        max_pending: u32,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM visitor_sign_ins WHERE expires_at <= ?1",
                [ms(now)],
            )?;
            let under_way: i64 =
                tx.query_row("SELECT COUNT(*) FROM visitor_sign_ins", [], |row| {
                    row.get(0)
                })?;
            if under_way >= i64::from(max_pending) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO visitor_sign_ins (state_digest, nonce, pkce_verifier, visit_id,
                                               expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &state_digest[..],
                    pending.nonce,
                    pending.pkce_verifier,
                    pending.visit_id,
                    ms(expires_at)
                ],
            )?;
            Ok(true)
        })
    }

    fn take_sign_in(
        &self,
        state_digest: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<PendingSignIn>> {
        self.write(|tx| {
            let found = tx
                .query_row(
                    "DELETE FROM visitor_sign_ins WHERE state_digest = ?1
                     RETURNING nonce, pkce_verifier, visit_id, expires_at",
                    [&state_digest[..]],
                    |row| {
                        Ok((
                            PendingSignIn {
                                nonce: row.get(0)?,
                                pkce_verifier: row.get(1)?,
                                visit_id: row.get(2)?,
                            },
                            row.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()?;
            Ok(found.and_then(|(pending, expires_at)| (expires_at > ms(now)).then_some(pending)))
        })
    }

    fn upsert_visitor(&self, person: &PortalPerson, now: Timestamp) -> StorageResult<Visitor> {
        self.write(|tx| {
            let name = &person.name;
            let id: i64 = tx.query_row(
                "INSERT INTO visitors (issuer, subject, family_name, given_name, middle_name,
                                       created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (issuer, subject) DO UPDATE SET
                     family_name = excluded.family_name, given_name = excluded.given_name,
                     middle_name = excluded.middle_name
                 RETURNING id",
                params![
                    person.issuer,
                    person.subject,
                    name.family_name,
                    name.given_name,
                    name.middle_name,
                    ms(now)
                ],
                |row| row.get(0),
            )?;
            Ok(Visitor {
                id,
                name: name.clone(),
            })
        })
    }

    fn attach_visit(
        &self,
        visitor_id: i64,
        visit_id: Uuid,
        now: Timestamp,
    ) -> StorageResult<Attached> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO visitor_visits (visit_id, visitor_id, attached_at)
                 VALUES (?1, ?2, ?3)",
                params![visit_id, visitor_id, ms(now)],
            )?;
            let owner: i64 = tx.query_row(
                "SELECT visitor_id FROM visitor_visits WHERE visit_id = ?1",
                [visit_id],
                |row| row.get(0),
            )?;
            Ok(if owner == visitor_id {
                Attached::Yours
            } else {
                Attached::Taken
            })
        })
    }

    fn detach_visit(&self, visitor_id: i64, visit_id: Uuid) -> StorageResult<bool> {
        self.write(|tx| {
            let detached = tx.execute(
                "DELETE FROM visitor_visits WHERE visit_id = ?1 AND visitor_id = ?2",
                params![visit_id, visitor_id],
            )? > 0;
            // Not theirs any more: neither is the number they left for it (a message not yet
            // sent is cancelled for want of it).
            if detached {
                tx.execute("DELETE FROM sms_consents WHERE visit_id = ?1", [visit_id])?;
            }
            Ok(detached)
        })
    }

    fn delete_visitor(&self, visitor_id: i64) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM sms_consents WHERE visit_id IN
                     (SELECT visit_id FROM visitor_visits WHERE visitor_id = ?1)",
                [visitor_id],
            )?;
            tx.execute(
                "DELETE FROM visitor_visits WHERE visitor_id = ?1",
                [visitor_id],
            )?;
            tx.execute(
                "DELETE FROM visitor_sessions WHERE visitor_id = ?1",
                [visitor_id],
            )?;
            tx.execute("DELETE FROM visitors WHERE id = ?1", [visitor_id])?;
            Ok(())
        })
    }

    fn create_visitor_session(
        &self,
        token_digest: &[u8; 32],
        visitor_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM visitor_sessions WHERE expires_at <= ?1",
                [ms(now)],
            )?;
            tx.execute(
                "INSERT INTO visitor_sessions (token_digest, visitor_id, expires_at)
                 VALUES (?1, ?2, ?3)",
                params![&token_digest[..], visitor_id, ms(expires_at)],
            )?;
            Ok(())
        })
    }

    fn visitor_session(
        &self,
        token_digest: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<Visitor>> {
        let conn = self.reader()?;
        Ok(conn
            .prepare_cached(
                "SELECT v.id, v.family_name, v.given_name, v.middle_name
                 FROM visitor_sessions s JOIN visitors v ON v.id = s.visitor_id
                 WHERE s.token_digest = ?1 AND s.expires_at > ?2",
            )?
            .query_row(params![&token_digest[..], ms(now)], |row| {
                Ok(Visitor {
                    id: row.get(0)?,
                    name: name_from(row, 1)?,
                })
            })
            .optional()?)
    }

    fn end_visitor_session(&self, token_digest: &[u8; 32]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM visitor_sessions WHERE token_digest = ?1",
                [&token_digest[..]],
            )?;
            Ok(())
        })
    }

    fn visitor_visits(&self, visitor_id: i64) -> StorageResult<Vec<VisitorVisit>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(
                "SELECT vv.visit_id, vv.attached_at, v.ended_at, v.clock_offset_ms, s.name,
                        sv.name, v.result_ready_at
                 FROM visitor_visits vv
                 LEFT JOIN visits v ON v.id = vv.visit_id
                 LEFT JOIN sections s ON s.id = v.section_id
                 LEFT JOIN services sv ON sv.id = v.service_id
                 WHERE vv.visitor_id = ?1
                 ORDER BY vv.attached_at DESC, vv.visit_id",
            )?
            .query_map([visitor_id], |row| {
                Ok((
                    row.get::<_, Uuid>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, Option<String>>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(visit_id, attached_at, ended_at, offset, section, service, ready)| {
                    let visit = match (ended_at, section, service) {
                        (Some(ended_at), Some(section), Some(service)) => Some((
                            instant(visit_instant_ms(ended_at, offset.unwrap_or(0)))?,
                            section,
                            service,
                        )),
                        _ => None,
                    };
                    Ok(VisitorVisit {
                        visit_id,
                        attached_at: instant(attached_at)?,
                        visit,
                        result_ready_at: optional_instant(ready)?,
                        feedback: sent_feedback(&conn, visit_id)?,
                    })
                },
            )
            .collect()
    }

    fn visitor_names(&self, visit_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, VisitorName)>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT p.family_name, p.given_name, p.middle_name
             FROM visitor_visits vv JOIN visitors p ON p.id = vv.visitor_id
             WHERE vv.visit_id = ?1",
        )?;
        let mut names = Vec::new();
        for &visit_id in visit_ids {
            if let Some(name) = stmt
                .query_row([visit_id], |row| name_from(row, 0))
                .optional()?
            {
                names.push((visit_id, name));
            }
        }
        Ok(names)
    }
}

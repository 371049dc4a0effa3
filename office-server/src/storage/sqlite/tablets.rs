//! Tablets, enrolment, credentials and pairings.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use shared_model::{NamedRef, Pairing, PairingEndReason, PairingStatus};
use uuid::Uuid;

use super::{SqliteStorage, changed_one, instant, ms, optional_instant, unique};
use crate::storage::*;

/// Reads a pairing with its names and services.
fn load_pairing(conn: &Connection, id: Uuid) -> StorageResult<Option<PairingRecord>> {
    let row = conn
        .query_row(
            "SELECT p.tablet_id, p.employee_id, e.full_name, p.section_id, s.name,
                    p.department_id, d.name, p.started_at, p.ends_at, p.ended_at
             FROM pairings p
             JOIN employees e ON e.id = p.employee_id
             JOIN sections s ON s.id = p.section_id
             JOIN departments d ON d.id = p.department_id
             WHERE p.id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    NamedRef {
                        id: row.get(1)?,
                        name: row.get(2)?,
                    },
                    NamedRef {
                        id: row.get(3)?,
                        name: row.get(4)?,
                    },
                    NamedRef {
                        id: row.get(5)?,
                        name: row.get(6)?,
                    },
                    row.get::<_, i64>(7)?,
                    row.get::<_, i64>(8)?,
                    row.get::<_, Option<i64>>(9)?,
                ))
            },
        )
        .optional()?;
    let Some((tablet_id, employee, section, department, started_at, ends_at, ended_at)) = row
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT sv.id, sv.name FROM pairing_services ps JOIN services sv ON sv.id = ps.service_id
         WHERE ps.pairing_id = ?1 ORDER BY ps.position",
    )?;
    let services = stmt
        .query_map([id], |row| {
            Ok(NamedRef {
                id: row.get(0)?,
                name: row.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // The specialist's pairings on other tablets that this one ended (at the moment it began).
    let ended_elsewhere = conn
        .prepare_cached(
            "SELECT t.name FROM pairings p JOIN tablets t ON t.id = p.tablet_id
             WHERE p.employee_id = ?1 AND p.tablet_id <> ?2 AND p.ended_at = ?3 AND p.end_reason = ?4
             ORDER BY t.name",
        )?
        .query_map(
            params![
                employee.id,
                tablet_id,
                started_at,
                PairingEndReason::MovedToAnotherTablet.as_str()
            ],
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(Some(PairingRecord {
        pairing: Pairing {
            id,
            employee,
            section,
            department,
            services,
            started_at: instant(started_at)?,
            ends_at: instant(ends_at)?,
            ended_elsewhere,
        },
        tablet_id,
        ended_at: optional_instant(ended_at)?,
    }))
}

/// expires_at, tablet_id, tablet name, confirmed_at, revoked_at.
type EnrolmentRow = (i64, Option<i64>, Option<String>, Option<i64>, Option<i64>);

impl TabletStore for SqliteStorage {
    fn create_enrolment(&self, enrolment: &NewEnrolment) -> StorageResult<()> {
        self.write(|tx| {
            // Expired, unapproved codes free their code for reuse.
            tx.execute(
                "DELETE FROM enrolments WHERE tablet_id IS NULL AND expires_at <= ?1",
                [ms(enrolment.created_at)],
            )?;
            tx.execute(
                "INSERT INTO enrolments (id, code, device_description, app_version, created_at,
                                         expires_at, feedback_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    enrolment.id,
                    enrolment.code,
                    enrolment.device_description,
                    enrolment.app_version,
                    ms(enrolment.created_at),
                    ms(enrolment.expires_at),
                    enrolment.feedback_key.as_ref().map(|key| &key[..])
                ],
            )
            .map_err(unique("enrolment code"))?;
            Ok(())
        })
    }

    fn approve_enrolment(
        &self,
        code: &str,
        tablet_name: &str,
        readmit: Option<i64>,
        now: Timestamp,
    ) -> StorageResult<i64> {
        self.write(|tx| {
            let enrolment: Option<(Uuid, String, Option<Vec<u8>>)> = tx
                .query_row(
                    "SELECT id, device_description, feedback_key FROM enrolments
                     WHERE code = ?1 AND tablet_id IS NULL AND expires_at > ?2",
                    params![code, ms(now)],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let Some((enrolment_id, description, feedback_key)) = enrolment else {
                return Err(StorageError::NotFound("enrolment code"));
            };
            let tablet_id = match readmit {
                // The same tablet again: its id, so its pairings and queued visits are its own;
                // its feedback key is the one it enrolled with now, if it sent one.
                Some(id) => {
                    let changed = tx.execute(
                        "UPDATE tablets SET name = ?1, device_description = ?2, revoked_at = NULL,
                                token_hash = NULL, confirmed_at = NULL,
                                feedback_key = COALESCE(?4, feedback_key)
                         WHERE id = ?3 AND revoked_at IS NOT NULL",
                        params![tablet_name, description, id, feedback_key],
                    )?;
                    changed_one(changed, "revoked tablet")?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO tablets (name, device_description, enrolled_at, feedback_key)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![tablet_name, description, ms(now), feedback_key],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            tx.execute(
                "UPDATE enrolments SET tablet_id = ?1 WHERE id = ?2",
                params![tablet_id, enrolment_id],
            )?;
            Ok(tablet_id)
        })
    }

    fn open_enrolments(&self, now: Timestamp) -> StorageResult<u32> {
        let conn = self.reader()?;
        Ok(conn
            .prepare_cached(
                "SELECT count(*) FROM enrolments WHERE tablet_id IS NULL AND expires_at > ?1",
            )?
            .query_row([ms(now)], |row| row.get(0))?)
    }

    fn acknowledge_told_ends(&self, tablet_id: i64, at: Timestamp) -> StorageResult<()> {
        // Nearly always there is nothing to acknowledge: look on a reader first.
        let pending: Option<i64> = self
            .reader()?
            .prepare_cached(
                "SELECT 1 FROM pairings WHERE tablet_id = ?1 AND end_told_at IS NOT NULL
                   AND end_acknowledged_at IS NULL AND end_told_at < ?2 LIMIT 1",
            )?
            .query_row(params![tablet_id, ms(at)], |row| row.get(0))
            .optional()?;
        if pending.is_some() {
            self.write(|tx| {
                tx.execute(
                    "UPDATE pairings SET end_acknowledged_at = ?2
                     WHERE tablet_id = ?1 AND end_told_at IS NOT NULL
                       AND end_acknowledged_at IS NULL AND end_told_at < ?2",
                    params![tablet_id, ms(at)],
                )?;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn note_ends_told(&self, tablet_id: i64, at: Timestamp) -> StorageResult<()> {
        const ENDED_UNTOLD: &str = "tablet_id = ?1 AND end_told_at IS NULL
            AND (ended_at IS NOT NULL OR ends_at <= ?2)";
        let untold: Option<i64> = self
            .reader()?
            .prepare_cached(&format!(
                "SELECT 1 FROM pairings WHERE {ENDED_UNTOLD} LIMIT 1"
            ))?
            .query_row(params![tablet_id, ms(at)], |row| row.get(0))
            .optional()?;
        if untold.is_some() {
            self.write(|tx| {
                tx.execute(
                    &format!("UPDATE pairings SET end_told_at = ?2 WHERE {ENDED_UNTOLD}"),
                    params![tablet_id, ms(at)],
                )?;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn enrolment_state(&self, id: Uuid, now: Timestamp) -> StorageResult<Option<EnrolmentState>> {
        let conn = self.reader()?;
        let row: Option<EnrolmentRow> = conn
            .query_row(
                "SELECT e.expires_at, e.tablet_id, t.name, t.confirmed_at, t.revoked_at
                 FROM enrolments e LEFT JOIN tablets t ON t.id = e.tablet_id WHERE e.id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .optional()?;
        Ok(
            row.map(|(expires_at, tablet_id, name, confirmed_at, revoked_at)| {
                match (tablet_id, name, confirmed_at, revoked_at) {
                    (Some(tablet_id), Some(tablet_name), None, None) => EnrolmentState::Approved {
                        tablet_id,
                        tablet_name,
                    },
                    (None, ..) if expires_at > ms(now) => EnrolmentState::Pending {
                        // An expiry written by this server always converts back.
                        expires_at: Timestamp::from_millisecond(expires_at).unwrap_or(now),
                    },
                    _ => EnrolmentState::Closed,
                }
            }),
        )
    }

    fn issue_tablet_token(&self, tablet_id: i64, token_hash: &[u8; 32]) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE tablets SET token_hash = ?1
                 WHERE id = ?2 AND confirmed_at IS NULL AND revoked_at IS NULL",
                params![&token_hash[..], tablet_id],
            )?;
            if changed == 0 {
                return Err(StorageError::NotFound("unconfirmed tablet"));
            }
            Ok(())
        })
    }

    fn authenticate_tablet(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<TabletIdentity>> {
        let found: Option<(i64, String, bool, bool)> = {
            let conn = self.reader()?;
            conn.prepare_cached(
                "SELECT id, name, confirmed_at IS NOT NULL, feedback_key IS NOT NULL FROM tablets
                 WHERE token_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([&token_hash[..]], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?
        };
        let Some((id, name, confirmed, has_feedback_key)) = found else {
            return Ok(None);
        };
        if !confirmed {
            // First use: the credential has reached the tablet, so no new one may be issued.
            self.write(|tx| {
                tx.execute(
                    "UPDATE tablets SET confirmed_at = ?1 WHERE id = ?2 AND confirmed_at IS NULL",
                    params![ms(now), id],
                )?;
                Ok(())
            })?;
        }
        Ok(Some(TabletIdentity {
            id,
            name,
            has_feedback_key,
        }))
    }

    fn revoke_tablet(&self, tablet_id: i64, now: Timestamp) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE tablets SET revoked_at = ?1, token_hash = NULL
                 WHERE id = ?2 AND revoked_at IS NULL",
                params![ms(now), tablet_id],
            )?;
            if changed == 0 {
                return Err(StorageError::NotFound("tablet"));
            }
            tx.execute(
                "UPDATE pairings SET ended_at = ?1, end_reason = ?2
                 WHERE tablet_id = ?3 AND ended_at IS NULL",
                params![ms(now), PairingEndReason::TabletRevoked.as_str(), tablet_id],
            )?;
            Ok(())
        })
    }

    fn rename_tablet(&self, id: i64, name: &str) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE tablets SET name = ?1 WHERE id = ?2",
                params![name, id],
            )?;
            changed_one(changed, "tablet")
        })
    }

    fn register_feedback_key(&self, tablet_id: i64, key: &[u8; 32]) -> StorageResult<[u8; 32]> {
        self.write(|tx| {
            tx.execute(
                "UPDATE tablets SET feedback_key = ?1 WHERE id = ?2 AND feedback_key IS NULL",
                params![&key[..], tablet_id],
            )?;
            read_feedback_key(tx, tablet_id)?.ok_or(StorageError::NotFound("tablet"))
        })
    }

    fn feedback_key(&self, tablet_id: i64) -> StorageResult<Option<[u8; 32]>> {
        let conn = self.reader()?;
        read_feedback_key(&conn, tablet_id)
    }

    fn tablets(&self) -> StorageResult<Vec<TabletInfo>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT id, name, device_description, enrolled_at, revoked_at, last_seen_at,
                    app_version, queue_length, recordings_pending, free_storage_bytes,
                    microphone, clock_offset_ms
             FROM tablets ORDER BY name, id",
        )?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, Option<i64>>(7)?,
                    row.get::<_, Option<i64>>(8)?,
                    row.get::<_, Option<i64>>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<i64>>(11)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|r| {
                Ok(TabletInfo {
                    id: r.0,
                    name: r.1,
                    device_description: r.2,
                    enrolled_at: instant(r.3)?,
                    revoked_at: optional_instant(r.4)?,
                    last_seen_at: optional_instant(r.5)?,
                    app_version: r.6,
                    queue_length: r.7,
                    recordings_pending: r.8,
                    free_storage_bytes: r.9,
                    microphone: r.10,
                    clock_offset_ms: r.11,
                })
            })
            .collect()
    }

    fn create_pairing_request(&self, request: &NewPairingRequest) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM pairing_requests WHERE tablet_id = ?1 AND pairing_id IS NULL",
                [request.tablet_id],
            )?;
            // Open codes that expired free their code; requests that led to a pairing stay.
            tx.execute(
                "DELETE FROM pairing_requests WHERE pairing_id IS NULL AND expires_at <= ?1",
                [ms(request.created_at)],
            )?;
            tx.execute(
                "INSERT INTO pairing_requests (id, tablet_id, code, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    request.id,
                    request.tablet_id,
                    request.code,
                    ms(request.created_at),
                    ms(request.expires_at)
                ],
            )
            .map_err(unique("pairing code"))?;
            Ok(())
        })
    }

    fn pairing_request_state(
        &self,
        request_id: Uuid,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<Option<PairingRequestState>> {
        let conn = self.reader()?;
        let row: Option<(i64, Option<Uuid>)> = conn
            .query_row(
                "SELECT expires_at, pairing_id FROM pairing_requests WHERE id = ?1 AND tablet_id = ?2",
                params![request_id, tablet_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => None,
            Some((_, Some(pairing_id))) => Some(PairingRequestState::Paired { pairing_id }),
            Some((expires_at, None)) if expires_at > ms(now) => {
                Some(PairingRequestState::Pending {
                    expires_at: instant(expires_at)?,
                })
            }
            Some(_) => Some(PairingRequestState::Expired),
        })
    }

    fn claim_pairing_code(&self, claim: &PairingClaim) -> StorageResult<Pairing> {
        self.write(|tx| {
            let request: Option<(Uuid, i64)> = tx
                .query_row(
                    "SELECT r.id, r.tablet_id FROM pairing_requests r
                     JOIN tablets t ON t.id = r.tablet_id AND t.revoked_at IS NULL
                     WHERE r.code = ?1 AND r.pairing_id IS NULL AND r.expires_at > ?2",
                    params![claim.code, ms(claim.now)],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((request_id, tablet_id)) = request else {
                return Err(StorageError::NotFound("pairing code"));
            };
            let place: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT e.section_id, s.department_id FROM employees e
                     JOIN sections s ON s.id = e.section_id WHERE e.id = ?1",
                    [claim.employee_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((section_id, department_id)) = place else {
                return Err(StorageError::NotFound("employee"));
            };
            tx.execute(
                "UPDATE pairings SET ended_at = ?1, end_reason = ?2
                 WHERE tablet_id = ?3 AND ended_at IS NULL AND ends_at > ?1",
                params![ms(claim.now), PairingEndReason::Replaced.as_str(), tablet_id],
            )?;
            // The specialist's pairings on other tablets end: one desk at a time.
            tx.execute(
                "UPDATE pairings SET ended_at = ?1, end_reason = ?2
                 WHERE employee_id = ?3 AND tablet_id <> ?4 AND ended_at IS NULL AND ends_at > ?1",
                params![
                    ms(claim.now),
                    PairingEndReason::MovedToAnotherTablet.as_str(),
                    claim.employee_id,
                    tablet_id
                ],
            )?;
            tx.execute(
                "INSERT INTO pairings (id, tablet_id, employee_id, section_id, department_id, started_at, ends_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    claim.pairing_id,
                    tablet_id,
                    claim.employee_id,
                    section_id,
                    department_id,
                    ms(claim.now),
                    ms(claim.ends_at)
                ],
            )?;
            tx.execute(
                "INSERT INTO pairing_services (pairing_id, service_id, position)
                 SELECT ?1, service_id, position FROM section_services WHERE section_id = ?2",
                params![claim.pairing_id, section_id],
            )?;
            tx.execute(
                "UPDATE pairing_requests SET pairing_id = ?1 WHERE id = ?2",
                params![claim.pairing_id, request_id],
            )?;
            load_pairing(tx, claim.pairing_id)?
                .map(|record| record.pairing)
                .ok_or(StorageError::NotFound("pairing"))
        })
    }

    fn pairing(&self, id: Uuid) -> StorageResult<Option<PairingRecord>> {
        let conn = self.reader()?;
        load_pairing(&conn, id)
    }

    fn tablet_pairing_status(
        &self,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<PairingStatus> {
        let conn = self.reader()?;
        let latest: Option<(Uuid, i64, Option<i64>, Option<String>)> = conn
            .prepare_cached(
                "SELECT id, ends_at, ended_at, end_reason FROM pairings
                 WHERE tablet_id = ?1 ORDER BY started_at DESC LIMIT 1",
            )?
            .query_row([tablet_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        let Some((id, ends_at, ended_at, end_reason)) = latest else {
            return Ok(PairingStatus::None);
        };
        match (ended_at, end_reason) {
            (Some(ended_at), Some(reason)) => Ok(PairingStatus::Ended {
                pairing_id: id,
                reason: PairingEndReason::parse(&reason)
                    .ok_or_else(|| StorageError::Corrupt(format!("pairing end reason {reason}")))?,
                ended_at: instant(ended_at)?,
            }),
            _ if ends_at <= ms(now) => Ok(PairingStatus::Ended {
                pairing_id: id,
                reason: PairingEndReason::WorkdayOver,
                ended_at: instant(ends_at)?,
            }),
            _ => {
                let record = load_pairing(&conn, id)?.ok_or(StorageError::NotFound("pairing"))?;
                Ok(PairingStatus::Active {
                    pairing: record.pairing,
                })
            }
        }
    }

    fn active_pairings_of_employee(
        &self,
        employee_id: i64,
        now: Timestamp,
    ) -> StorageResult<Vec<Pairing>> {
        let conn = self.reader()?;
        let ids = conn
            .prepare_cached(
                "SELECT id FROM pairings
                 WHERE employee_id = ?1 AND ended_at IS NULL AND ends_at > ?2
                 ORDER BY started_at",
            )?
            .query_map(params![employee_id, ms(now)], |row| row.get::<_, Uuid>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut pairings = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = load_pairing(&conn, id)? {
                pairings.push(record.pairing);
            }
        }
        Ok(pairings)
    }

    fn end_pairing(
        &self,
        id: Uuid,
        reason: PairingEndReason,
        now: Timestamp,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE pairings SET ended_at = ?1, end_reason = ?2
                 WHERE id = ?3 AND ended_at IS NULL AND ends_at > ?1",
                params![ms(now), reason.as_str(), id],
            )?;
            Ok(changed > 0)
        })
    }
}

fn read_feedback_key(conn: &Connection, tablet_id: i64) -> StorageResult<Option<[u8; 32]>> {
    let key: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT feedback_key FROM tablets WHERE id = ?1")?
        .query_row([tablet_id], |row| row.get(0))
        .optional()?;
    key.flatten()
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| StorageError::Corrupt(format!("tablet {tablet_id}'s feedback key")))
        })
        .transpose()
}

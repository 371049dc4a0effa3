//! A demo office that looks lived-in: weeks of history for every employee, made by the
//! server's own operations at the instants they would have happened — tablets enrolled and
//! approved, paired each working morning of the production calendar, their visits synced at
//! the end of the day through the acceptance and alert rules, the recordings of «Плохо» stored
//! with their analysis, and the department heads' verdicts (some late, some still missing).
//!
//! The recordings are a score of speech clips (made once by `scripts/demo-clips.sh`), each
//! checked and analysed once and linked (or copied) under every visit that uses it. A fixed
//! seed makes every demo the same office.

use std::path::{Path, PathBuf};

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Span, Timestamp};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use shared_model::{MAX_SYNC_BATCH, MicrophoneState, Rating, SyncBatch, TabletHealth, Visit};
use uuid::Uuid;

use crate::analysis::{Analysis, analyse_file};
use crate::app::Shared;
use crate::domain::{
    Comment, DisplayName, EnrolmentCode, Login, Password, ReviewScope, TabletName,
};
use crate::ops::accounts::{CreateAccountError, NewAccountRequest, create_account};
use crate::ops::pairing::PairingError;
use crate::ops::sync::{Rules, SyncError, SyncingTablet};
use crate::ops::tablets::{
    ApproveError, ENROLMENT_CODE_LIFETIME, TabletError, revoke_tablet, with_fresh_code,
};
use crate::ops::verdicts::{Decision, DecisionError};
use crate::recordings::sha256_of;
use crate::storage::{
    NewEnrolment, PairingClaim, Role, Scope, Storage, StorageError, StoredRecording, UploadPromise,
};
use crate::workday::pairing_ends_at;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no speech clips (*.3gp) in {0}; scripts/demo-clips.sh makes them")]
    NoClips(PathBuf),
    #[error("the clip {path} is not a recording the server accepts: {reason}")]
    BadClip { path: PathBuf, reason: String },
    #[error("cannot read or link {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the office already has visits; history fills only a new demo office")]
    NotEmpty,
    #[error("no administrator to approve the demo tablets; create one first")]
    NoAdministrator,
    #[error("the demo heads' accounts: {0}")]
    Account(#[from] CreateAccountError),
    #[error("a demo tablet: {0}")]
    Tablet(#[from] ApproveError),
    #[error("retiring a demo tablet: {0}")]
    Retire(#[from] TabletError),
    #[error("a demo pairing: {0}")]
    Pairing(#[from] PairingError),
    #[error("a demo sync: {0}")]
    Sync(#[from] SyncError),
    #[error("a demo verdict: {0}")]
    Verdict(#[from] DecisionError),
    #[error("a name of the demo is not valid: {0}")]
    Name(String),
    #[error("a day of the demo's history: {0}")]
    Day(#[from] jiff::Error),
    #[error("a demo visit was refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A speech clip the demo's «Плохо» recordings are made of.
pub struct Clip {
    path: PathBuf,
    size_bytes: u64,
    sha256: String,
    duration_ms: u64,
    analysis: Option<Analysis>,
}

/// Reads, checks and analyses every `*.3gp` in `dir` (in name order).
pub fn load_clips(dir: &Path) -> Result<Vec<Clip>, HistoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HistoryError::Io { path, source }
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "3gp"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(HistoryError::NoClips(dir.to_path_buf()));
    }
    paths
        .into_iter()
        .map(|path| {
            let mut file = std::fs::File::open(&path).map_err(io(&path))?;
            let size_bytes = file.metadata().map_err(io(&path))?.len();
            let info = threegp::validate(&mut std::io::BufReader::new(&mut file), size_bytes)
                .map_err(|e| HistoryError::BadClip {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let sha256 = sha256_of(&mut std::fs::File::open(&path).map_err(io(&path))?)
                .map_err(io(&path))?;
            // Without its analysis a recording still plays, with the plain player.
            let analysis = analyse_file(&path)
                .inspect_err(|e| tracing::warn!(clip = ?path, error = %e, "clip not analysed"))
                .ok();
            Ok(Clip {
                analysis,
                size_bytes,
                sha256,
                duration_ms: info.duration_ms,
                path,
            })
        })
        .collect()
}

/// What to fill.
pub struct HistoryRequest<'a> {
    /// Calendar days back from today.
    pub days: u32,
    pub clips: &'a [Clip],
    /// The password of the demo heads' accounts.
    pub heads_password: &'a str,
    pub now: Timestamp,
}

/// What was made, for the command's report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filled {
    pub working_days: u32,
    pub visits: u64,
    pub bad: u64,
    pub recordings: u64,
    pub verdicts: u64,
    /// «Плохо» whose first verdict came after its deadline.
    pub late: u64,
    /// «Плохо» still without a verdict: within their deadline, and past it.
    pub waiting: u64,
    pub overdue: u64,
    /// The heads' logins.
    pub heads: Vec<String>,
}

/// The demo's department heads: (department, login, name).
const HEADS: &[(&str, &str, &str)] = &[
    (super::HOUSING, "head.housing", "Громова Светлана Ильинична"),
    (super::URBAN, "head.urban", "Орлов Виктор Павлович"),
];

const VERDICT_COMMENTS: &[&str] = &[
    "Прослушал запись: консультация дана верно, посетитель недоволен сроками по закону.",
    "Специалист не уточнил состав документов, посетителю придется прийти еще раз.",
    "Разговор вежливый, разъяснения полные.",
    "Специалист перебивал посетителя. Проведена беседа.",
    "Отказ в приеме обоснован: нет заявления установленной формы.",
    "",
];

/// An employee's temper over the history: their usual shares of Плохо and Средне.
struct Profile {
    bad: f64,
    medium: f64,
}

fn profile(index: usize) -> Profile {
    // One employee in seven has a hard time (the alert rule will notice); the rest differ a bit.
    match index % 7 {
        3 => Profile {
            bad: 0.16,
            medium: 0.2,
        },
        0 => Profile {
            bad: 0.03,
            medium: 0.08,
        },
        n => Profile {
            bad: 0.04 + n as f64 * 0.008,
            medium: 0.1 + n as f64 * 0.01,
        },
    }
}

struct Desk {
    tablet_id: i64,
    employee_id: i64,
    profile: Profile,
}

fn at(shared: &Shared, day: Date, time: Time) -> Result<Timestamp, HistoryError> {
    day.to_datetime(time)
        .to_zoned_datetime(shared.zone.clone())
        .map(|z| z.timestamp())
        .map_err(HistoryError::from)
}

fn name<T>(parsed: Result<T, impl std::fmt::Display>) -> Result<T, HistoryError> {
    parsed.map_err(|e| HistoryError::Name(e.to_string()))
}

/// Fills an office that has a directory and an administrator, but no visits yet, with `days`
/// of history; `progress(done, total)` is told after each day.
pub fn fill_history(
    shared: &Shared,
    request: &HistoryRequest<'_>,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<Filled, HistoryError> {
    let db: &dyn Storage = shared.storage.as_ref();
    if db.counts()?.visits > 0 {
        return Err(HistoryError::NotEmpty);
    }
    let admin = db
        .accounts()?
        .into_iter()
        .find(|a| a.account.role == Role::Admin)
        .ok_or(HistoryError::NoAdministrator)?
        .account
        .id;
    let mut rng = StdRng::seed_from_u64(0x0D15_EA5E);
    let today = shared.zone.to_datetime(request.now).date();
    let first = today.checked_sub(Span::new().days(i64::from(request.days)))?;
    let directory = db.directory()?;
    let mut filled = Filled::default();

    // The heads, and the tablets: one per employee, enrolled on the first day.
    let enrolled = at(shared, first, shared.config.working_hours.start)?;
    let mut heads = Vec::new();
    for (department, login, full_name) in HEADS {
        let department = directory
            .departments
            .iter()
            .find(|d| d.name == *department)
            .ok_or(StorageError::NotFound("demo department"))?;
        let id = create_account(
            db,
            &NewAccountRequest {
                login: name(Login::parse(login))?,
                display_name: name(DisplayName::parse(full_name))?,
                password: name(Password::new_secret(request.heads_password))?,
                role: Role::Head {
                    scope: Scope::Department(department.id),
                },
            },
            Some(admin),
            enrolled,
        )?;
        heads.push((department.id, id));
        filled.heads.push(login.to_string());
    }
    let mut desks = Vec::new();
    let employees = directory
        .departments
        .iter()
        .flat_map(|d| &d.sections)
        .flat_map(|s| &s.employees);
    for (index, employee) in employees.enumerate() {
        let enrolment = Uuid::new_v4();
        let code: Option<EnrolmentCode> = with_fresh_code(|code: &EnrolmentCode| {
            db.create_enrolment(&NewEnrolment {
                id: enrolment,
                code: code.as_str().to_string(),
                device_description: "Демо: планшет истории".into(),
                app_version: "demo-history".into(),
                created_at: enrolled,
                expires_at: enrolled + ENROLMENT_CODE_LIFETIME,
                feedback_key: None,
            })
            .map(|()| code.clone())
        })?;
        let code = code.ok_or(StorageError::NotFound("free enrolment code"))?;
        let tablet_name = name(TabletName::parse(&format!("Окно {}", index + 1)))?;
        let tablet_id =
            crate::ops::tablets::approve_enrolment(db, &code, &tablet_name, None, admin, enrolled)?;
        desks.push(Desk {
            tablet_id,
            employee_id: employee.id,
            profile: profile(index),
        });
    }

    // Every working day: each desk pairs in the morning, serves visitors and syncs at night.
    let rules = Rules {
        acceptance: shared.config.acceptance(),
        alert: shared.config.alert_rule(),
    };
    let hours = &shared.config.working_hours;
    let mut bad_visits: Vec<(Uuid, i64, Timestamp)> = Vec::new();
    let total_days = u32::try_from(today.since(first).map_or(0, |s| s.get_days())).unwrap_or(0) + 1;
    let mut day = first;
    let mut done = 0;
    while day <= today {
        if shared.calendar.is_working_day(day) {
            filled.working_days += 1;
            let open = at(shared, day, hours.start)?;
            let close = at(shared, day, hours.end)?.min(request.now);
            for desk in &desks {
                let morning = open + SignedDuration::from_mins(rng.random_range(0..20));
                if morning >= close {
                    continue;
                }
                let pairing = pair(shared, desk, morning)?;
                let mut visits = Vec::new();
                let mut clock = morning + SignedDuration::from_mins(rng.random_range(1..15));
                // Ratings improve a little over the weeks: the office works on it.
                let weeks_ago = today.since(day).map_or(0, |s| s.get_days()) as f64 / 7.0;
                let worse = 1.0 + weeks_ago * 0.04;
                loop {
                    let roll: f64 = rng.random();
                    let rating = if roll < desk.profile.bad * worse {
                        Some(Rating::Bad)
                    } else if roll < (desk.profile.bad + desk.profile.medium) * worse {
                        Some(Rating::Medium)
                    } else if roll < 0.97 {
                        Some(Rating::Good)
                    } else {
                        None
                    };
                    let clip = (rating == Some(Rating::Bad))
                        .then(|| rng.random_range(0..request.clips.len()));
                    let length = match clip {
                        Some(i) => SignedDuration::from_millis(
                            request.clips[i].duration_ms as i64 + rng.random_range(0..2000),
                        ),
                        None => SignedDuration::from_secs(rng.random_range(180..1100)),
                    };
                    let ended = clock + length;
                    if ended >= close {
                        break;
                    }
                    let service = &pairing.services[rng.random_range(0..pairing.services.len())];
                    visits.push((
                        Visit {
                            id: Uuid::now_v7(),
                            pairing_id: pairing.id,
                            service_id: service.id,
                            started_at: clock,
                            ended_at: ended,
                            rating,
                            has_recording: clip.is_some(),
                        },
                        clip,
                    ));
                    clock = ended + SignedDuration::from_secs(rng.random_range(30..1500));
                }
                let synced_at = close;
                for chunk in visits.chunks(MAX_SYNC_BATCH) {
                    sync(shared, &rules, desk, chunk, synced_at)?;
                }
                for (visit, clip) in &visits {
                    filled.visits += 1;
                    if let Some(clip) = clip {
                        store_recording(shared, visit.id, &request.clips[*clip], synced_at)?;
                        filled.bad += 1;
                        filled.recordings += 1;
                        bad_visits.push((visit.id, desk.employee_id, synced_at));
                    }
                }
            }
        }
        done += 1;
        progress(done, total_days);
        day = match day.tomorrow() {
            Ok(next) => next,
            Err(_) => break,
        };
    }

    // The history's tablets retire now that the live fleet takes over; left active, each
    // would be reported silent all through today's working hours.
    for desk in &desks {
        revoke_tablet(db, desk.tablet_id, admin, request.now)?;
    }

    // The heads' verdicts: most in time, some late, some not yet, a few given twice.
    for (visit_id, employee_id, received) in bad_visits {
        let department = directory
            .departments
            .iter()
            .find(|d| {
                d.sections
                    .iter()
                    .any(|s| s.employees.iter().any(|e| e.id == employee_id))
            })
            .map(|d| d.id);
        let Some(&(_, head)) = heads.iter().find(|(d, _)| Some(*d) == department) else {
            continue;
        };
        let due = shared.verdict_due(received);
        let roll: f64 = rng.random();
        let decided_at = if due <= request.now {
            if roll < 0.68 {
                Some(received + (due.duration_since(received)).mul_f64(rng.random_range(0.05..0.9)))
            } else if roll < 0.93 {
                Some(due + SignedDuration::from_hours(rng.random_range(2..100)))
            } else {
                None
            }
        } else if roll < 0.35 {
            Some(received + SignedDuration::from_mins(rng.random_range(20..600)))
        } else {
            None
        };
        match decided_at.filter(|at| *at < request.now) {
            Some(at) => {
                let correct = rng.random_bool(0.7);
                verdict(shared, head, department, visit_id, correct, &mut rng, at)?;
                filled.verdicts += 1;
                if at >= due {
                    filled.late += 1;
                }
                let again = at + SignedDuration::from_hours(rng.random_range(1..48));
                if rng.random_bool(0.08) && again < request.now {
                    verdict(
                        shared, head, department, visit_id, !correct, &mut rng, again,
                    )?;
                    filled.verdicts += 1;
                }
            }
            None if due <= request.now => filled.overdue += 1,
            None => filled.waiting += 1,
        }
    }
    Ok(filled)
}

fn pair(
    shared: &Shared,
    desk: &Desk,
    at: Timestamp,
) -> Result<shared_model::Pairing, HistoryError> {
    let db = shared.storage.as_ref();
    crate::ops::pairing::tablet_request(db, desk.tablet_id, at)?;
    let issued = crate::ops::pairing::request_code(db, desk.tablet_id, at)?;
    Ok(db.claim_pairing_code(&PairingClaim {
        code: issued.code,
        employee_id: desk.employee_id,
        pairing_id: Uuid::now_v7(),
        now: at + SignedDuration::from_secs(20),
        ends_at: pairing_ends_at(at, &shared.zone, &shared.config.working_hours),
    })?)
}

fn sync(
    shared: &Shared,
    rules: &Rules,
    desk: &Desk,
    visits: &[(Visit, Option<usize>)],
    at: Timestamp,
) -> Result<(), HistoryError> {
    let batch = SyncBatch {
        sent_at: at,
        health: TabletHealth {
            app_version: "demo-history".into(),
            queue_length: visits.len() as u32,
            recordings_pending: 0,
            free_storage_bytes: 8 << 30,
            microphone: MicrophoneState::Ok,
        },
        visits: visits.iter().map(|(visit, _)| visit.clone()).collect(),
        feedback_key: None,
    };
    let tablet = SyncingTablet {
        id: desk.tablet_id,
        has_feedback_key: false,
        feedback_base_url: None,
    };
    let answer = crate::ops::sync::sync(
        shared.storage.as_ref(),
        &shared.live,
        rules,
        tablet,
        batch,
        at,
    )?;
    match answer.results.iter().find(|r| !r.outcome.is_stored()) {
        Some(refused) => Err(HistoryError::Refused(format!("{refused:?}"))),
        None => Ok(()),
    }
}

/// Stores a clip as a visit's recording: the upload's promise, the file under the visit's
/// name (a hard link where the file system allows, a copy otherwise), its row and analysis.
fn store_recording(
    shared: &Shared,
    visit_id: Uuid,
    clip: &Clip,
    at: Timestamp,
) -> Result<(), HistoryError> {
    let db = shared.storage.as_ref();
    let promise = UploadPromise {
        size_bytes: clip.size_bytes,
        sha256: clip.sha256.clone(),
    };
    db.begin_recording_upload(visit_id, &promise, at)?;
    let target = shared.recordings.final_path(visit_id);
    std::fs::hard_link(&clip.path, &target)
        .or_else(|_| std::fs::copy(&clip.path, &target).map(|_| ()))
        .map_err(|source| HistoryError::Io {
            path: target,
            source,
        })?;
    db.complete_recording(
        visit_id,
        &StoredRecording {
            size_bytes: clip.size_bytes,
            sha256: clip.sha256.clone(),
            duration_ms: clip.duration_ms,
            stored_at: at,
        },
    )?;
    db.store_recording_analysis(visit_id, clip.analysis.as_ref())?;
    Ok(())
}

fn verdict(
    shared: &Shared,
    head: i64,
    department: Option<i64>,
    visit_id: Uuid,
    correct: bool,
    rng: &mut StdRng,
    at: Timestamp,
) -> Result<(), HistoryError> {
    let text = VERDICT_COMMENTS[rng.random_range(0..VERDICT_COMMENTS.len())];
    let scope = ReviewScope::own(match department {
        Some(id) => crate::domain::Visibility::Department(id),
        None => crate::domain::Visibility::All,
    });
    crate::ops::verdicts::record_verdict(
        shared.storage.as_ref(),
        &shared.live,
        scope,
        visit_id,
        &Decision {
            correct,
            comment: name(Comment::parse(text))?,
        },
        head,
        at,
    )?;
    Ok(())
}

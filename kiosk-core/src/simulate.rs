//! A fleet of simulated tablets: N real kiosk cores (state machine, store, sync, encoder) with
//! synthetic audio, driven the way people drive them — an administrator approves each tablet,
//! a specialist pairs it with the code on its screen, visitors come, are served and tap a
//! rating. Everything goes through the real office-server API.

use std::path::PathBuf;
use std::time::Duration;

use rand::RngExt;
use reqwest::Client;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::kiosk::{AudioChoice, KioskConfig, RunningKiosk, start};
use crate::machine::Timings;
use crate::screen::{Action, ScreenView, View};

#[derive(Debug, Clone)]
pub struct SimulationConfig {
    pub server: String,
    pub tablets: usize,
    pub admin_login: String,
    pub admin_password: String,
    pub data_dir: PathBuf,
    /// Length of a simulated visit (real visits take minutes; a demo wants seconds).
    pub visit_length: Duration,
    /// Pause between visits at one desk.
    pub pause: Duration,
    /// Stop after this many visits per tablet (None: run until stopped).
    pub visits_per_tablet: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error("office server request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the office server refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Kiosk(#[from] crate::kiosk::KioskError),
    #[error("the simulated tablet's screen stopped updating")]
    ScreenGone,
}

/// How visitors rate: mostly Хорошо, some Средне, a few Плохо, and a few walk away.
fn pick_rating_key() -> Option<&'static str> {
    match rand::rng().random_range(0..100) {
        0..=69 => Some("good"),
        70..=86 => Some("medium"),
        87..=96 => Some("bad"),
        _ => None,
    }
}

/// Runs the fleet until every tablet has done its visits (or forever).
pub async fn run(config: SimulationConfig) -> Result<(), SimulationError> {
    let admin = signed_in(&config.server, &config.admin_login, &config.admin_password).await?;
    let employees = employees(&admin, &config.server).await?;
    if employees.is_empty() {
        return Err(SimulationError::Refused(
            "the organisation has no employees: load the demo organisation first".into(),
        ));
    }
    let mut desks = Vec::new();
    for index in 0..config.tablets {
        let employee = employees[index % employees.len()];
        let config = config.clone();
        let admin = admin.clone();
        desks.push(tokio::spawn(async move {
            desk(config, admin, index, employee).await
        }));
    }
    for desk in desks {
        match desk.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(error) => return Err(SimulationError::Refused(error.to_string())),
        }
    }
    Ok(())
}

async fn signed_in(server: &str, login: &str, password: &str) -> Result<Client, SimulationError> {
    let client = Client::builder().cookie_store(true).build()?;
    let response = client
        .post(format!("{server}/api/auth/login"))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(SimulationError::Refused(format!(
            "sign-in as {login}: {}",
            response.text().await.unwrap_or_default()
        )));
    }
    Ok(client)
}

async fn employees(admin: &Client, server: &str) -> Result<Vec<i64>, SimulationError> {
    let directory: Value = admin
        .get(format!("{server}/api/directory"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut ids = Vec::new();
    for department in directory["departments"].as_array().into_iter().flatten() {
        for section in department["sections"].as_array().into_iter().flatten() {
            for employee in section["employees"].as_array().into_iter().flatten() {
                if let Some(id) = employee["id"].as_i64() {
                    ids.push(id);
                }
            }
        }
    }
    Ok(ids)
}

/// Waits until the screen shows what `want` picks out of it.
async fn until<T>(
    views: &mut watch::Receiver<View>,
    mut want: impl FnMut(&View) -> Option<T>,
) -> Result<T, SimulationError> {
    loop {
        if let Some(found) = want(&views.borrow_and_update()) {
            return Ok(found);
        }
        views
            .changed()
            .await
            .map_err(|_| SimulationError::ScreenGone)?;
    }
}

/// One desk: a tablet, its specialist, and a stream of visitors.
async fn desk(
    config: SimulationConfig,
    admin: Client,
    index: usize,
    employee: i64,
) -> Result<(), SimulationError> {
    let kiosk = start(KioskConfig {
        server: config.server.clone(),
        data_dir: config.data_dir.join(format!("tablet-{index:03}")),
        screen_port: 0,
        audio: AudioChoice::Synthetic,
        timings: Timings {
            thanks: jiff::SignedDuration::from_secs(1),
            ..Timings::default()
        },
        retention_days: 90,
        app_version: concat!("simulator ", env!("CARGO_PKG_VERSION")).to_string(),
        office_ca_pem: None,
    })
    .await?;
    let result = serve_visitors(&config, &admin, index, employee, &kiosk).await;
    kiosk.stop().await?;
    result
}

async fn serve_visitors(
    config: &SimulationConfig,
    admin: &Client,
    index: usize,
    employee: i64,
    kiosk: &RunningKiosk,
) -> Result<(), SimulationError> {
    let server = &config.server;
    let mut views = kiosk.views();
    let mut done = 0;
    let mut used_codes: Vec<String> = Vec::new();
    // React to whatever the screen shows, the way the people around the tablet would: the
    // administrator approves a new tablet, the specialist pairs it (again after the working
    // day ended), visitors come and rate.
    while config.visits_per_tablet.is_none_or(|limit| done < limit) {
        let screen = until(&mut views, |v| match &v.screen {
            ScreenView::Enrolment { code: Some(code) }
            | ScreenView::Pairing { code: Some(code) }
                if used_codes.contains(code) =>
            {
                None
            }
            ScreenView::Enrolment { code: None } | ScreenView::Pairing { code: None } => None,
            ScreenView::Thanks { .. } | ScreenView::InVisit { .. } | ScreenView::Rating { .. } => {
                None
            }
            other => Some(other.clone()),
        })
        .await?;
        match screen {
            ScreenView::Enrolment { code: Some(code) } => {
                let response = admin
                    .post(format!("{server}/api/admin/enrolments"))
                    .json(
                        &json!({ "code": code, "name": format!("Симулятор, стол {}", index + 1) }),
                    )
                    .send()
                    .await?;
                if !response.status().is_success() {
                    return Err(SimulationError::Refused(
                        response.text().await.unwrap_or_default(),
                    ));
                }
                used_codes.push(code);
            }
            ScreenView::Pairing { code: Some(code) } => {
                let specialist = specialist(admin, server, employee).await?;
                let response = specialist
                    .post(format!("{server}/api/pairings"))
                    .json(&json!({ "code": code }))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    return Err(SimulationError::Refused(
                        response.text().await.unwrap_or_default(),
                    ));
                }
                used_codes.push(code);
            }
            ScreenView::Idle { .. } => {
                one_visit(config, kiosk, &mut views).await?;
                done += 1;
                tokio::time::sleep(jitter(config.pause)).await;
            }
            ScreenView::ServiceChoice { .. } => {
                kiosk.act(Action::Cancel).await;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A visitor is served and (mostly) rates the visit.
async fn one_visit(
    config: &SimulationConfig,
    kiosk: &RunningKiosk,
    views: &mut watch::Receiver<View>,
) -> Result<(), SimulationError> {
    kiosk.act(Action::Start).await;
    let services = until(views, |v| match &v.screen {
        ScreenView::ServiceChoice { services } => Some(services.clone()),
        _ => None,
    })
    .await?;
    if services.is_empty() {
        return Err(SimulationError::Refused(
            "the section offers no services".into(),
        ));
    }
    let service = services[rand::rng().random_range(0..services.len())].id;
    kiosk
        .act(Action::ChooseService {
            service_id: service,
        })
        .await;
    tokio::time::sleep(jitter(config.visit_length)).await;
    kiosk.act(Action::End).await;
    let buttons = until(views, |v| match &v.screen {
        ScreenView::Rating { buttons } => Some(*buttons),
        _ => None,
    })
    .await?;
    // The visitor reads the buttons, then taps (or walks away).
    tokio::time::sleep(Duration::from_millis(900)).await;
    if let Some(key) = pick_rating_key()
        && let Some(position) = buttons.iter().position(|b| *b == key)
    {
        kiosk.act(Action::Rate { position }).await;
        let link = until(views, |v| match &v.screen {
            ScreenView::Thanks { feedback_link, .. } => Some(feedback_link.clone()),
            ScreenView::Idle { .. } => Some(None),
            _ => None,
        })
        .await?;
        // Some visitors scan the code and say more on their phone.
        if let Some(link) = link
            && rand::rng().random_bool(FEEDBACK_SHARE)
        {
            send_feedback(&link, key).await;
        }
    }
    Ok(())
}

/// The share of rated visits whose visitor sends feedback from the QR code.
const FEEDBACK_SHARE: f64 = 0.3;

/// What a visitor might write, by the rating they gave on the tablet.
const COMMENTS: [(&str, &str); 6] = [
    ("good", "Все объяснили подробно, спасибо."),
    ("good", "Быстро и вежливо."),
    ("medium", "Долго ждал в очереди, но вопрос решили."),
    ("medium", "Не хватило информации о нужных документах."),
    (
        "bad",
        "Сотрудник был невнимателен, пришлось прийти еще раз.",
    ),
    ("bad", "Очень душно в зале ожидания."),
];

/// Posts the feedback form the way a phone's browser does: scores for the federal method's
/// five criteria (the server's default list) leaning on the tablet's rating, sometimes a
/// comment and thanks. A failure is only logged: the visitor gives up.
async fn send_feedback(link: &str, rating: &str) {
    let form = feedback_form(rating);
    let sent = Client::new().post(link).form(&form).send().await;
    match sent {
        Ok(response) if response.status().is_success() => {
            tracing::debug!("simulated visitor feedback sent");
        }
        Ok(response) => tracing::info!(status = %response.status(), "simulated feedback refused"),
        Err(error) => tracing::info!(%error, "simulated feedback not sent"),
    }
}

fn feedback_form(rating: &str) -> Vec<(String, String)> {
    let mut rng = rand::rng();
    let centre: i64 = match rating {
        "good" => 5,
        "medium" => 3,
        _ => 2,
    };
    let mut form: Vec<(String, String)> = [
        "service_time",
        "queue_time",
        "courtesy",
        "comfort",
        "information",
    ]
    .iter()
    .map(|key| {
        let score = (centre + rng.random_range(-1i64..=1)).clamp(1, 5);
        (format!("score_{key}"), score.to_string())
    })
    .collect();
    if rng.random_bool(0.6) {
        let options: Vec<&str> = COMMENTS
            .iter()
            .filter(|(r, _)| *r == rating)
            .map(|(_, c)| *c)
            .collect();
        form.push((
            "comment".into(),
            options[rng.random_range(0..options.len())].into(),
        ));
    }
    if rating == "good" && rng.random_bool(0.5) {
        form.push(("thanks".into(), "1".into()));
    }
    form
}

/// Signs in as the employee's specialist account, creating it the first time.
async fn specialist(
    admin: &Client,
    server: &str,
    employee: i64,
) -> Result<Client, SimulationError> {
    let login = format!("sim-specialist-{employee}");
    let password = format!("simulated password {employee}");
    let created = admin
        .post(format!("{server}/api/admin/accounts"))
        .json(&json!({
            "login": login,
            "display_name": format!("Специалист {employee} (симулятор)"),
            "password": password,
            "role": "specialist",
            "employee_id": employee,
        }))
        .send()
        .await?;
    // 409: made by an earlier run, with the same password.
    if !created.status().is_success() && created.status() != reqwest::StatusCode::CONFLICT {
        return Err(SimulationError::Refused(
            created.text().await.unwrap_or_default(),
        ));
    }
    signed_in(server, &login, &password).await
}

fn jitter(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.6..1.4))
}

//! The dashboard in real headless Chromium (Debian's chromium and chromium-driver) against a
//! running server: the head of «Отдел учета» signs in and sees only that section, plays a
//! recording (the audio element loads and its time advances), records a verdict, saves a report
//! whose XLSX has the page's numbers, and sees a visit synced through the API appear without a
//! reload. With UPDATE_SCREENSHOTS set, it also writes a screenshot of each tab to
//! docs/screenshots/.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, Locator};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use shared_model::{Pairing, Rating, Visit};
use test_support::browser::{
    Chromium, Window, screenshots_dir, screenshots_wanted, script, wait_for,
};
use test_support::*;

const RECORDING: &[u8] = test_support::fixtures::VISIT_3GPP;
const ACCOUNTING: &str = "Отдел учета";

/// Fills the sign-in form and sends it.
pub(super) async fn sign_in(browser: &Client, login: &str, password: &str) {
    wait_for(browser, "input[name=login]")
        .await
        .send_keys(login)
        .await
        .unwrap();
    wait_for(browser, "input[name=password]")
        .await
        .send_keys(password)
        .await
        .unwrap();
    wait_for(browser, "form.login button")
        .await
        .click()
        .await
        .unwrap();
}

/// Presses the sign-out button in the page header.
async fn sign_out(browser: &Client) {
    wait_for(browser, "form[action='/logout'] button")
        .await
        .click()
        .await
        .unwrap();
}

/// The text of each cell of table `id`, row by row (the row header first).
async fn page_table(browser: &Client, id: &str) -> Vec<Vec<String>> {
    let value = script(
        browser,
        &format!(
            "return [...document.querySelectorAll('table[data-table=\"{id}\"] tbody tr, \
             table[data-table=\"{id}\"] tfoot tr')].map(tr => \
             [...tr.children].map(c => c.innerText.trim()));"
        ),
    )
    .await;
    serde_json::from_value(value).expect("rows of text")
}

async fn screenshot(browser: &Client, name: &str) {
    if !screenshots_wanted() {
        return;
    }
    // The whole page: grow the window to the document's height first.
    let height = script(browser, "return document.documentElement.scrollHeight;")
        .await
        .as_u64()
        .unwrap_or(1000)
        .clamp(600, 4000);
    browser
        .set_window_size(1400, height as u32 + 120)
        .await
        .expect("window size");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = browser.screenshot().await.expect("a screenshot");
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot written");
    browser
        .set_window_size(1400, 1000)
        .await
        .expect("window size");
}

/// A small deterministic stream of numbers, so the demo data is the same at every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Thirty days of visits: a few a day for each pairing, mostly Хорошо.
fn history(pairing: &Pairing, seed: u64, now: Timestamp) -> Vec<Visit> {
    let mut random = Lcg(seed);
    let mut visits = Vec::new();
    for day in 1..30 {
        let per_day = 2 + random.next(5);
        for n in 0..per_day {
            let minutes = day * 24 * 60 - 60 * n as i64 - random.next(50) as i64;
            let rating = match random.next(20) {
                0..=11 => Some(Rating::Good),
                12..=15 => Some(Rating::Medium),
                16..=17 => Some(Rating::Bad),
                _ => None,
            };
            let mut visit = visit_at(pairing, now - SignedDuration::from_mins(minutes), rating);
            visit.service_id =
                pairing.services[random.next(pairing.services.len() as u64) as usize].id;
            visit.has_recording = false;
            visits.push(visit);
        }
    }
    visits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_of_section_works_through_the_dashboard_in_chromium() {
    let app = spawn_app().await;
    let now = Timestamp::now();
    let admin = app.admin().await;
    // Three specialists of «Отдел учета» with a month of visits, one of «Отдел субсидий» and one
    // of «Отдел архитектуры» (another department).
    let mut tablets = Vec::new();
    for (section, index, name) in [
        (ACCOUNTING, 0, "Окно 1"),
        (ACCOUNTING, 1, "Окно 2"),
        (ACCOUNTING, 2, "Окно 3"),
        ("Отдел субсидий", 0, "Окно 4"),
        ("Отдел архитектуры", 0, "Окно 5"),
    ] {
        let (tablet, pairing) = app.paired_tablet_with(&admin, section, name, index).await;
        let visits = history(&pairing, 17 + tablets.len() as u64, now);
        for chunk in visits.chunks(200) {
            tablet.sync(chunk).await;
        }
        tablets.push((tablet, pairing));
    }
    // Today's Плохо visits with recordings: one in the head's section, one outside it.
    let (own_tablet, own_pairing) = &tablets[0];
    let own_bad = visit(own_pairing, Some(Rating::Bad));
    own_tablet.sync(std::slice::from_ref(&own_bad)).await;
    own_tablet.upload_recording(&own_bad, RECORDING).await;
    let no_file = Visit {
        has_recording: false,
        ..visit(&tablets[1].1, Some(Rating::Bad))
    };
    tablets[1].0.sync(std::slice::from_ref(&no_file)).await;
    let (other_tablet, other_pairing) = &tablets[4];
    let other_bad = visit(other_pairing, Some(Rating::Bad));
    other_tablet.sync(std::slice::from_ref(&other_bad)).await;
    other_tablet.upload_recording(&other_bad, RECORDING).await;

    let section_id = app.section(ACCOUNTING).id;
    create_account(
        &app,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": section_id}),
    )
    .await;
    create_account(&app, &admin, "observer", json!({"role": "observer"})).await;

    let chromium = Chromium::start();
    let downloads = tempfile::tempdir().unwrap();
    let browser = chromium
        .open(&Window {
            downloads: Some(downloads.path().to_path_buf()),
            russian: true,
            ..Window::new(1400, 1000)
        })
        .await;

    // Sign in through the form; the dashboard is the way back.
    browser.goto(&app.url("/dashboard")).await.unwrap();
    wait_for(&browser, "form.login").await;
    screenshot(&browser, "login").await;
    sign_in(&browser, "head.accounting", WEB_PASSWORD).await;
    wait_for(&browser, "#tab-section.active").await;

    // Only the section: its name, its employees, none of another department's.
    let scope = wait_for(&browser, "#scope").await.text().await.unwrap();
    assert!(scope.contains(ACCOUNTING), "{scope}");
    let body = script(&browser, "return document.body.innerText;").await;
    let body = body.as_str().unwrap_or_default().to_string();
    for employee in &app.section(ACCOUNTING).employees {
        assert!(
            body.contains(&employee.full_name),
            "{} missing",
            employee.full_name
        );
    }
    for section in ["Отдел архитектуры", "Отдел субсидий"] {
        for employee in &app.section(section).employees {
            assert!(
                !body.contains(&employee.full_name),
                "{} shown",
                employee.full_name
            );
        }
    }
    let employees = page_table(&browser, "employees_avg").await;
    assert_eq!(employees.len(), app.section(ACCOUNTING).employees.len() + 1);
    let section_options = script(
        &browser,
        "return [...document.querySelectorAll('select[name=section] option')].map(o => o.text);",
    )
    .await;
    assert_eq!(section_options, json!([ACCOUNTING]));
    screenshot(&browser, "tab-section").await;

    // «Сохранить отчет» under «Статистика по сотрудникам (кол-во посещений)»: the file has the
    // page's numbers.
    let counts = page_table(&browser, "employees_count").await;
    wait_for(&browser, "#t-employees_count a.save")
        .await
        .click()
        .await
        .unwrap();
    let file = wait_for_download(downloads.path()).await;
    let sheet = read_xlsx(&std::fs::read(&file).unwrap());
    assert_eq!(sheet[0][0], "Статистика по сотрудникам (кол-во посещений)");
    assert!(
        sheet
            .iter()
            .any(|r| r[0].contains("Область:") && r[0].contains(ACCOUNTING))
    );
    assert!(
        sheet
            .iter()
            .any(|r| r[0].contains("За день:") && r[0].contains("За квартал:"))
    );
    for row in &counts {
        let found = sheet
            .iter()
            .find(|r| r[0] == row[0])
            .unwrap_or_else(|| panic!("row {} missing from the file: {sheet:?}", row[0]));
        assert_eq!(&found[..7], &row[..7], "the file and the page differ");
    }

    // The other tabs.
    wait_for(&browser, "#tab-department")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#tab-department.active").await;
    wait_for(&browser, "svg.pie").await;
    wait_for(&browser, "svg.trend").await;
    let sections = page_table(&browser, "sections_avg").await;
    assert_eq!(sections.len(), 2, "its section and the total: {sections:?}");
    wait_for(&browser, "#tab-employee")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#tab-employee.active").await;
    let employee_name = &own_pairing.employee.name;
    let link = wait_for(&browser, "table[data-table=employees_avg] tbody a").await;
    assert_eq!(
        link.text().await.unwrap(),
        app.section(ACCOUNTING).employees[0].full_name
    );
    link.click().await.unwrap();
    wait_for(&browser, "table[data-table=employee_summary]").await;
    assert!(
        wait_for(&browser, "#scope")
            .await
            .text()
            .await
            .unwrap()
            .contains(employee_name.as_str())
    );
    screenshot(&browser, "tab-employee").await;
    wait_for(&browser, "#tab-services")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#tab-services.active").await;
    wait_for(&browser, "table[data-table=top_services]").await;
    screenshot(&browser, "tab-services").await;

    // «Анализ оценок "Плохо"»: the player plays; the missing file says so.
    browser.goto(&app.url("/dashboard/bad")).await.unwrap();
    let audio_css = format!("audio[data-visit=\"{}\"]", own_bad.id);
    wait_for(&browser, &audio_css).await;
    let rows = page_table(&browser, "bad").await;
    assert!(rows.len() > 2, "{rows:?}");
    for row in &rows {
        assert!(
            row[0].ends_with(ACCOUNTING),
            "a Плохо visit of another section: {row:?}"
        );
        assert_eq!(row[2], "---");
    }
    let text = script(&browser, "return document.body.innerText;").await;
    assert!(text.as_str().unwrap().contains("Файл отсутствует"));
    assert!(
        !text
            .as_str()
            .unwrap()
            .contains(&other_pairing.employee.name)
    );
    let played = browser
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 const audio = document.querySelector('{}');
                 audio.muted = true;
                 audio.play().then(() => {{
                   const start = performance.now();
                   const check = () => {{
                     if (audio.currentTime > 0.5) done({{ok: true, time: audio.currentTime, ready: audio.readyState, duration: audio.duration}});
                     else if (performance.now() - start > 10000) done({{ok: false, time: audio.currentTime, ready: audio.readyState, error: audio.error && audio.error.code}});
                     else setTimeout(check, 100);
                   }};
                   check();
                 }}, e => done({{ok: false, error: String(e)}}));",
                audio_css.replace('\'', "\\'")
            ),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        played["ok"],
        json!(true),
        "the recording did not play: {played}"
    );
    assert!(played["duration"].as_f64().unwrap_or(0.0) > 1.0, "{played}");
    script(
        &browser,
        &format!(
            "document.querySelector('{}').pause();",
            audio_css.replace('\'', "\\'")
        ),
    )
    .await;

    // A verdict through the form.
    let row = format!("#bad-{}", own_bad.id);
    wait_for(&browser, &format!("{row} input[name=correct][value=no]"))
        .await
        .click()
        .await
        .unwrap();
    wait_for(&browser, &format!("{row} textarea[name=comment]"))
        .await
        .send_keys("Не предложил записаться на консультацию")
        .await
        .unwrap();
    wait_for(&browser, &format!("{row} .verdict-form button"))
        .await
        .click()
        .await
        .unwrap();
    let decided = wait_for(&browser, &format!("{row} p.decided")).await;
    assert_eq!(
        decided.text().await.unwrap(),
        "Специалист действовал неправильно"
    );
    // «без решения» leaves the other one.
    wait_for(&browser, "#filter-verdict")
        .await
        .select_by_value("undecided")
        .await
        .unwrap();
    wait_for(&browser, &format!("#bad-{}", no_file.id)).await;
    let undecided = page_table(&browser, "bad").await;
    assert_eq!(undecided.len(), rows.len() - 1);
    assert!(
        browser.find(Locator::Css(&row)).await.is_err(),
        "the decided visit is filtered out"
    );
    browser.goto(&app.url("/dashboard/bad")).await.unwrap();
    wait_for(&browser, &audio_css).await;
    screenshot(&browser, "bad-analysis").await;

    // Live: a visit synced through the API shows up without a reload.
    browser
        .goto(&app.url(&format!("/dashboard/section?section={section_id}")))
        .await
        .unwrap();
    wait_for(&browser, "#live-state:not([hidden])").await;
    script(&browser, "window.notReloaded = true;").await;
    let before = page_table(&browser, "section_summary").await;
    let visits_today: i64 = before[1][1].parse().unwrap();
    let synced = Timestamp::now();
    tablets[2]
        .0
        .sync(&[visit(&tablets[2].1, Some(Rating::Good))])
        .await;
    let mut after = before.clone();
    while after[1][1] == before[1][1] {
        assert!(
            Timestamp::now().duration_since(synced) < SignedDuration::from_secs(2),
            "the new visit did not appear within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = page_table(&browser, "section_summary").await;
    }
    assert_eq!(after[1][1], (visits_today + 1).to_string());
    assert_eq!(
        script(&browser, "return window.notReloaded === true;").await,
        json!(true)
    );

    // The observer's «Сводная по всем департаментам».
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        sign_out(&browser).await;
        wait_for(&browser, "form.login").await;
        sign_in(&browser, "observer", WEB_PASSWORD).await;
        wait_for(&browser, "#tab-department.active").await;
        wait_for(&browser, "table[data-table=departments_avg]").await;
        screenshot(&browser, "tab-department").await;
        sign_out(&browser).await;
        sign_in(&browser, ADMIN_LOGIN, ADMIN_PASSWORD).await;
        wait_for(&browser, "#tab-department.active").await;
        browser.goto(&app.url("/admin/tablets")).await.unwrap();
        wait_for(&browser, "table#tablets").await;
        screenshot(&browser, "admin-tablets").await;
        browser.goto(&app.url("/admin/audit")).await.unwrap();
        wait_for(&browser, "table#audit").await;
        screenshot(&browser, "admin-audit").await;
    }
    browser.close().await.unwrap();
    app.stop().await;
}

/// Waits for a finished download (Chromium writes `*.crdownload` until it is).
async fn wait_for_download(dir: &Path) -> PathBuf {
    for _ in 0..100 {
        let done = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "xlsx"));
        if let Some(path) = done {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no report was downloaded");
}

/// The first sheet as text, numbers written the way the page writes them.
fn read_xlsx(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    Data::String(s) => s.clone(),
                    Data::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
                    Data::Float(f) => format!("{f:.4}"),
                    Data::Int(i) => i.to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

//! Dashboard pages for tests: clients that keep cookies and see redirects, sign-in with the
//! session's CSRF token, accounts of every role, and the tables of a page read back as text.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::server::TestServer;

pub const WEB_PASSWORD: &str = "dashboard password";

/// A client that does not follow redirects, so tests see the 303s; keeps cookies.
pub fn web_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Creates an account through the administrator's JSON API (`role` as that API takes it, e.g.
/// `json!({"role": "head_of_section", "section_id": 3})`) and returns its login.
pub async fn create_account(app: &TestServer, admin: &Client, login: &str, role: Value) -> String {
    let mut body = json!({
        "login": login,
        "display_name": format!("Учетная запись {login}"),
        "password": WEB_PASSWORD,
    });
    if let (Some(body), Some(role)) = (body.as_object_mut(), role.as_object()) {
        for (key, value) in role {
            body.insert(key.clone(), value.clone());
        }
    }
    app.post_new_account(admin, &body).await;
    login.to_string()
}

/// A signed-in dashboard client (no redirects followed) and its session's CSRF token.
pub async fn web_login(app: &TestServer, login: &str, password: &str) -> (Client, String) {
    let client = app
        .client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "login {login}");
    let account: Value = response.json().await.unwrap();
    let page = if account["role"] == "specialist" {
        "/pairing"
    } else {
        "/dashboard/alerts"
    };
    let html = client
        .get(app.url(page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&html).expect("a CSRF token on the page");
    (client, csrf)
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Undoes the HTML escaping of the dashboard's templates.
pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x27;", "'")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

fn strip_tags(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in text.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    unescape(out.trim())
}

/// The rows of the table `data-table="{id}"`: the row header's text and each cell's text.
pub fn table_rows(html: &str, id: &str) -> Vec<(String, Vec<String>)> {
    let marker = format!("data-table=\"{id}\"");
    let Some(start) = html.find(&marker) else {
        return Vec::new();
    };
    let end = html[start..]
        .find("</table>")
        .map_or(html.len(), |e| e + start);
    let table = &html[start..end];
    let body = table.find("<tbody>").map_or(table, |b| &table[b..]);
    let mut rows = Vec::new();
    for chunk in body.split("<tr").skip(1) {
        let chunk = chunk.split("</tr>").next().unwrap_or("");
        let label = chunk
            .find("<th")
            .and_then(|s| {
                let open = chunk[s..].find('>')? + s + 1;
                let close = chunk[open..].find("</th>")? + open;
                Some(strip_tags(&chunk[open..close]))
            })
            .unwrap_or_default();
        let cells = chunk
            .split("<td")
            .skip(1)
            .map(|cell| {
                let open = cell.find('>').map_or(0, |o| o + 1);
                let close = cell.find("</td>").unwrap_or(cell.len());
                strip_tags(&cell[open..close])
            })
            .collect();
        rows.push((label, cells));
    }
    rows
}

/// The cells of the row labelled `label` in table `id`.
pub fn row_of(html: &str, id: &str, label: &str) -> Vec<String> {
    table_rows(html, id)
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, cells)| cells)
        .unwrap_or_else(|| panic!("no row {label:?} in table {id}"))
}

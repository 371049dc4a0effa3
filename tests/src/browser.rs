//! Headless Chromium for tests: Debian's `chromium` driven through Debian's `chromedriver`
//! (fantoccini), with the flags this machine's closed network needs. No tool downloads a
//! browser or a driver.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// chromedriver on a free port, ended with every browser it opened when dropped (a test that
/// panics never closes its window); each browser gets a fresh profile.
pub struct Chromium {
    process: Child,
    port: u16,
    profiles: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The driver leads its own process group, which its browsers join: end them all.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.process.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// How a browser window is opened.
#[derive(Debug, Clone)]
pub struct Window {
    pub width: u32,
    pub height: u32,
    /// Where downloads land (none: the browser's default).
    pub downloads: Option<PathBuf>,
    /// Russian as the browser's language.
    pub russian: bool,
    /// Whether pages may run scripts (a cheap phone's browser may not).
    pub javascript: bool,
    /// A phone's screen of `width`×`height` (Chromium's device emulation: a desktop window
    /// cannot be narrower than about 500 px).
    pub phone: bool,
}

impl Window {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            downloads: None,
            russian: false,
            javascript: true,
            phone: false,
        }
    }
}

impl Chromium {
    pub fn start() -> Self {
        let port = crate::free_port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/setup.sh installs it)");
        Self {
            process,
            port,
            profiles: tempfile::tempdir().expect("profiles directory"),
        }
    }

    /// Opens a browser window.
    pub async fn open(&self, window: &Window) -> Client {
        let profile = tempfile::tempdir_in(self.profiles.path())
            .expect("profile directory")
            .keep();
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            format!("--window-size={},{}", window.width, window.height),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut prefs = serde_json::Map::new();
        if window.russian {
            args.push("--lang=ru-RU".into());
            prefs.insert("intl.accept_languages".into(), json!("ru-RU,ru"));
        }
        if !window.javascript {
            prefs.insert(
                "profile.managed_default_content_settings.javascript".into(),
                json!(2),
            );
        }
        if let Some(downloads) = &window.downloads {
            prefs.insert(
                "download.default_directory".into(),
                json!(downloads.display().to_string()),
            );
            prefs.insert("download.prompt_for_download".into(), json!(false));
        }
        let mut options = json!({
            "binary": "/usr/bin/chromium",
            "args": args,
            "prefs": prefs,
        });
        if window.phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": window.width, "height": window.height, "pixelRatio": 2 },
                "userAgent": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 \
                              (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
            });
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
        });
        let capabilities = capabilities.as_object().cloned().expect("an object");
        let url = format!("http://127.0.0.1:{}", self.port);
        for _ in 0..100 {
            let connected = ClientBuilder::rustls()
                .expect("TLS roots")
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            if let Ok(client) = connected {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot connect to chromedriver at {url}");
    }
}

/// The first element matching `css`, once it appears.
pub async fn wait_for(browser: &Client, css: &str) -> Element {
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

/// The text of the first element matching `css`, once it appears. A page that redraws may
/// replace an element found a moment ago: look again.
pub async fn text_of(browser: &Client, css: &str) -> String {
    let mut last_error = String::new();
    for _ in 0..20 {
        let found = browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => match element.text().await {
                Ok(text) => return text,
                Err(e) => last_error = e.to_string(),
            },
            Err(e) => panic!("{css} did not appear: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot read {css}: {last_error}");
}

/// The text of the first element matching `css` once it contains `expected`: after a click
/// that navigates, the page before may still be showing for a moment.
pub async fn text_containing(browser: &Client, css: &str, expected: &str) -> String {
    let mut text = String::new();
    for _ in 0..150 {
        text = text_of(browser, css).await;
        if text.contains(expected) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never said {expected:?}; it says {text:?}");
}

/// Clicks the first element matching `css`, once it appears (looking again if it was redrawn).
pub async fn click(browser: &Client, css: &str) {
    let mut last_error = String::new();
    for _ in 0..20 {
        let found = browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => match element.click().await {
                Ok(()) => return,
                Err(e) => last_error = e.to_string(),
            },
            Err(e) => panic!("{css} did not appear: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot click {css}: {last_error}");
}

/// Runs a script in the page and returns its value.
pub async fn script(browser: &Client, code: &str) -> Value {
    browser
        .execute(code, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{code}"))
}

/// Whether screenshots for `docs/screenshots/` are wanted (`UPDATE_SCREENSHOTS` set).
pub fn screenshots_wanted() -> bool {
    std::env::var_os("UPDATE_SCREENSHOTS").is_some()
}

/// Where screenshots for the documentation go.
pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
}

/// Writes a PNG of the window to `docs/screenshots/{name}`, when screenshots are wanted.
pub async fn save_screenshot(browser: &Client, name: &str) {
    if !screenshots_wanted() {
        return;
    }
    let png = browser.screenshot().await.expect("screenshot");
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).expect("screenshots directory");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

/// A screenshot of the window, decoded: RGB(A) pixels row by row.
pub struct Screenshot {
    pub width: usize,
    pub height: usize,
    channels: usize,
    pixels: Vec<u8>,
}

/// A rectangle of the page in CSS pixels, as an element's `rectangle()` gives it.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Area {
    pub async fn of(element: &Element) -> Self {
        let (x, y, width, height) = element.rectangle().await.expect("element rectangle");
        Self {
            x,
            y,
            width,
            height,
        }
    }

    fn contains(&self, x: usize, y: usize) -> bool {
        let (x, y) = (x as f64, y as f64);
        // A pixel of margin: the edge of an element is blended with what is around it.
        x + 1.0 >= self.x
            && x <= self.x + self.width + 1.0
            && y + 1.0 >= self.y
            && y <= self.y + self.height + 1.0
    }
}

impl Screenshot {
    pub async fn take(browser: &Client) -> Self {
        let png = browser.screenshot().await.expect("screenshot");
        Self::decode(&png)
    }

    pub fn decode(png: &[u8]) -> Self {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
        let frame = reader.next_frame(&mut pixels).expect("PNG pixels");
        pixels.truncate(frame.buffer_size());
        Self {
            width: frame.width as usize,
            height: frame.height as usize,
            channels: frame.color_type.samples(),
            pixels,
        }
    }

    fn pixel(&self, x: usize, y: usize) -> &[u8] {
        let at = (y * self.width + x) * self.channels;
        &self.pixels[at..at + self.channels]
    }

    /// The texts of the QR codes a real decoder (rqrr) finds in the picture.
    pub fn qr_codes(&self) -> Vec<String> {
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(self.width, self.height, |x, y| {
                let p = self.pixel(x, y);
                if self.channels >= 3 {
                    ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000)
                        as u8
                } else {
                    p[0]
                }
            });
        image
            .detect_grids()
            .into_iter()
            .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
            .collect()
    }

    /// How many pixels differ from `other` outside `except` (both pictures of one window).
    pub fn pixels_differing_outside(&self, other: &Screenshot, except: Area) -> usize {
        assert_eq!(
            (self.width, self.height),
            (other.width, other.height),
            "screenshots of different sizes"
        );
        let mut differing = 0;
        for y in 0..self.height {
            for x in 0..self.width {
                if !except.contains(x, y) && self.pixel(x, y) != other.pixel(x, y) {
                    differing += 1;
                }
            }
        }
        differing
    }
}

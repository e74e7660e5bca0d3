//! A real browser for the tests: Debian's Chromium (packages `chromium`, `chromium-driver`)
//! driven through WebDriver: `chromedriver` on a free port of 127.0.0.1, `fantoccini` as the
//! client. Headless, a fresh profile per browser, no network but what the page asks for.
//!
//! `browser_tools()` finds the two programs (`CHROMIUM` / `CHROMEDRIVER` override the search);
//! without them it skips visibly (`SKIPPED: ...` on stderr) and returns `None`, and under `CI`
//! it fails instead (`.ci/run` installs them). `Browser::launch` starts chromedriver in a process
//! group of its own, so that dropping the `Browser` (also when a test panics) ends chromedriver
//! and the Chromium it started, by that group's id.
//!
//! Screenshots go to `<target dir>/test-screenshots/<test>/<name>.png`, emptied when the test's
//! browser starts.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// The browser and its driver, found on this machine.
pub struct BrowserTools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

fn find_program(env: &str, names: &[&str], extra: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    extra
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (skipped visibly; a failure under `CI`).
pub fn browser_tools() -> Option<BrowserTools> {
    // Debian's /usr/bin/chromium is a shell wrapper; chromedriver is given the browser itself.
    let chromium = find_program(
        "CHROMIUM",
        &["chromium", "chromium-browser"],
        &["/usr/lib/chromium/chromium"],
    );
    let chromedriver = find_program("CHROMEDRIVER", &["chromedriver"], &[]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(BrowserTools {
            chromium,
            chromedriver,
        }),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide chromium and chromedriver (.ci/run installs the Debian packages chromium and chromium-driver)"
            );
            eprintln!(
                "SKIPPED: chromium and chromedriver not installed (apt-get install chromium chromium-driver); the browser tests did not run"
            );
            None
        }
    }
}

/// Where a test's screenshots go.
pub fn screenshot_dir(test: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("test-screenshots")
        .join(test)
}

/// chromedriver and the browsers it started: one process group, killed on drop.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group id is chromedriver's pid (process_group(0)); the browser is in it too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session.
pub struct Browser {
    client: Client,
    shots: PathBuf,
    _profile: tempfile::TempDir,
    driver: Driver,
}

/// How long a page, a text or chromedriver may take (generous: the whole suite shares two cores).
const WAIT: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts chromedriver and a Chromium session for `test` (the screenshot directory's name).
    pub async fn launch(tools: &BrowserTools, test: &str) -> Browser {
        Self::launch_with(tools, test, &[]).await
    }

    /// [`Browser::launch`] with more Chromium arguments (e.g. `--host-resolver-rules=...`).
    pub async fn launch_with(tools: &BrowserTools, test: &str, extra: &[String]) -> Browser {
        let shots = screenshot_dir(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                shots.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let driver = Driver { child };
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            let ready = http
                .get(format!("{webdriver}/status"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(r) = ready {
                let status: serde_json::Value = r.json().await.expect("status JSON");
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "chromedriver did not answer on {webdriver} within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-breakpad",
                    "--disable-crash-reporter",
                    "--disable-dev-shm-usage",
                    "--window-size=1024,768",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let mut capabilities = capabilities;
        if let Some(args) = capabilities["goog:chromeOptions"]["args"].as_array_mut() {
            args.extend(extra.iter().map(|a| serde_json::Value::String(a.clone())));
        }
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no Chromium session via {webdriver}: {e} (see {})",
                    shots.join("chromedriver.log").display()
                )
            });
        Browser {
            client,
            shots,
            _profile: profile,
            driver,
        }
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The address of the page shown.
    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("a body")
            .text()
            .await
            .expect("body text")
    }

    /// Waits until the page's text contains `needle`; returns the text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let text = match self.client.find(Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            assert!(
                start.elapsed() < WAIT,
                "no {needle:?} on {} within {WAIT:?}; the page says:\n{text}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `value` into the field whose `<label>` reads `field`, or else the field named `field`.
    pub async fn fill(&self, field: &str, value: &str) {
        assert!(!field.contains('\''), "a field name without quotes");
        let label = self
            .client
            .find(Locator::XPath(&format!(
                "//label[normalize-space(.)='{field}']"
            )))
            .await;
        let input = match label {
            Ok(label) => match label.attr("for").await.expect("label attribute") {
                Some(id) => self.client.find(Locator::Id(&id)).await,
                None => label.find(Locator::Css("input, textarea, select")).await,
            },
            Err(_) => {
                self.client
                    .find(Locator::Css(&format!("[name='{field}']")))
                    .await
            }
        };
        let input = match input {
            Ok(input) => input,
            Err(e) => panic!("no field {field:?} on {}: {e}", self.url().await),
        };
        input.clear().await.expect("clear field");
        input.send_keys(value).await.expect("type into field");
    }

    /// Clicks the button (or submit input) that reads `label`.
    pub async fn click_button(&self, label: &str) {
        assert!(!label.contains('\''), "a button label without quotes");
        let button = self
            .client
            .find(Locator::XPath(&format!(
                "//button[normalize-space(.)='{label}'] | //input[(@type='submit' or @type='button') and @value='{label}']"
            )))
            .await;
        let button = match button {
            Ok(button) => button,
            Err(e) => panic!("no button {label:?} on {}: {e}", self.url().await),
        };
        button.click().await.expect("click");
    }

    /// Follows the link that reads `text`.
    pub async fn click_link(&self, text: &str) {
        let link = match self.client.find(Locator::LinkText(text)).await {
            Ok(l) => l,
            Err(e) => panic!("no link {text:?} on {}: {e}", self.url().await),
        };
        link.click().await.expect("click");
    }

    /// The page's HTML source.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Waits until the address of the page shown starts with `prefix`; returns it.
    pub async fn wait_for_url(&self, prefix: &str) -> url::Url {
        let start = Instant::now();
        loop {
            let u = self.url().await;
            if u.as_str().starts_with(prefix) {
                return u;
            }
            assert!(
                start.elapsed() < WAIT,
                "not at {prefix} within {WAIT:?}; at {u}:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes a PNG of the viewport to the test's screenshot directory; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The text of the first element `xpath` finds (waiting for it); panics when there is none.
    pub async fn text_at(&self, xpath: &str) -> String {
        let start = Instant::now();
        loop {
            if let Ok(e) = self.client.find(Locator::XPath(xpath)).await {
                return e.text().await.expect("element text");
            }
            assert!(
                start.elapsed() < WAIT,
                "nothing at {xpath} on {} within {WAIT:?}; the page says:\n{}",
                self.url().await,
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Accepts the `confirm()` dialog the page shows (waiting for it).
    pub async fn accept_dialog(&self) {
        let start = Instant::now();
        while self.client.accept_alert().await.is_err() {
            assert!(start.elapsed() < WAIT, "no dialog within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of the cookie `name` (HttpOnly ones too).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Resizes the window (screenshots show the viewport).
    pub async fn window_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
    }

    /// Ends the session (the browser quits), then chromedriver.
    pub async fn close(self) {
        let Browser { client, driver, .. } = self;
        let _ = client.close().await;
        drop(driver);
    }
}

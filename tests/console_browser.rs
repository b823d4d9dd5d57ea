//! The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over the W3C WebDriver protocol against a real `sairex serve --demo` with its SMSC
//! simulator.
//!
//! Runs when `chromedriver` is on the PATH; `.ci/run` installs it and sets
//! `SAIREX_BROWSER_TESTS=1`, which turns a missing driver into a failure instead of a skip.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_driver() -> Option<String> {
    ["chromedriver", "/usr/bin/chromedriver"]
        .into_iter()
        .find(|d| {
            Command::new(d)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
}

/// The demo: its URL, printed console login and superadmin token.
fn start_demo(dir: &Path) -> (Killed, String, String, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sairex serve --demo");
    let stdout = child.stdout.take().expect("stdout");
    let (mut url, mut login, mut token) = (None, None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.split("is running: ").nth(1) {
            url = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.split("sign in as ").nth(1) {
            let (email, rest) = rest.split_once(", password ").expect("login");
            login = Some((
                email.to_owned(),
                rest.trim_end_matches(')').trim().to_owned(),
            ));
        }
        if line.starts_with("Superadmin token")
            && let Some((_, t)) = line.rsplit_once(": ")
        {
            token = Some(t.trim().to_owned());
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    let (email, password) = login.expect("a console login");
    (
        Killed(child),
        url.expect("url"),
        email,
        password,
        token.expect("the superadmin token"),
    )
}

struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Killed,
}

impl Browser {
    async fn start(driver: &str) -> (Self, String) {
        // A free loopback port for the driver (it takes a port, not a listener).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let browser = Self {
            http: sairex_engine::http_client::builder()
                .expect("tls")
                .build()
                .expect("client"),
            base: format!("http://127.0.0.1:{port}"),
            _driver: Killed(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser
            .http
            .get(format!("{}/status", browser.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let session = browser
            .call(
                reqwest::Method::POST,
                "/session",
                json!({ "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--disable-dev-shm-usage", "--window-size=390,844"],
                    },
                } } }),
            )
            .await;
        let id = session["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        (browser, id)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        match self.try_call(method.clone(), path, body).await {
            Ok(v) => v,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// The command's value, or the WebDriver error object.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, Value> {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if method == reqwest::Method::POST {
            r = r.json(&body);
        }
        let v: Value = r
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        if v["value"]["error"].is_null() {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].clone())
        }
    }
}

struct Page<'a> {
    b: &'a Browser,
    s: String,
}

impl Page<'_> {
    async fn go(&self, url: &str) {
        self.b
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/url", self.s),
                json!({ "url": url }),
            )
            .await;
    }
    async fn find(&self, css: &str) -> String {
        let v = self
            .b
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/element", self.s),
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        v[ELEMENT].as_str().expect("element").to_owned()
    }
    async fn count(&self, css: &str) -> usize {
        self.b
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/elements", self.s),
                json!({ "using": "css selector", "value": css }),
            )
            .await
            .as_array()
            .map_or(0, Vec::len)
    }
    async fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.b
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/element/{e}/value", self.s),
                json!({ "text": text }),
            )
            .await;
    }
    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.b
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/element/{e}/click", self.s),
                json!({}),
            )
            .await;
    }
    async fn text(&self, css: &str) -> String {
        // Live parts of a page are swapped in place (SSE updates): the element found may be
        // replaced before its text is read, which WebDriver answers "stale element
        // reference". Find it again then.
        for _ in 0..5 {
            let e = self.find(css).await;
            let read = self
                .b
                .try_call(
                    reqwest::Method::GET,
                    &format!("/session/{}/element/{e}/text", self.s),
                    Value::Null,
                )
                .await;
            match read {
                Ok(v) => return v.as_str().unwrap_or_default().to_owned(),
                Err(e) if e["error"] == "stale element reference" => continue,
                Err(e) => panic!("text of {css}: {e}"),
            }
        }
        panic!("text of {css}: the element was replaced five times in a row");
    }
    async fn url(&self) -> String {
        self.b
            .call(
                reqwest::Method::GET,
                &format!("/session/{}/url", self.s),
                Value::Null,
            )
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    async fn attr(&self, css: &str, name: &str) -> String {
        let e = self.find(css).await;
        self.b
            .call(
                reqwest::Method::GET,
                &format!("/session/{}/element/{e}/attribute/{name}", self.s),
                Value::Null,
            )
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    /// Waits until `css`'s text satisfies `ok`, without reloading; answers the last text.
    async fn wait_for(&self, css: &str, ok: impl Fn(&str) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let got = if self.count(css).await > 0 {
                self.text(css).await
            } else {
                String::new()
            };
            if ok(&got) || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    /// Saves a screenshot of the current page as `out/name.png`.
    async fn screenshot(&self, out: &Path, name: &str) {
        let png = self
            .b
            .call(
                reqwest::Method::GET,
                &format!("/session/{}/screenshot", self.s),
                Value::Null,
            )
            .await;
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            png.as_str().expect("base64 png"),
        )
        .expect("png");
        std::fs::write(out.join(format!("{name}.png")), bytes).expect("write png");
    }
    /// Waits until the browser is at a URL ending with `suffix` and returns it: a click on a
    /// form's button only starts its request, and reading the URL (or navigating) at once can
    /// overtake it.
    async fn wait_url(&self, suffix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let at = self.url().await;
            if at.ends_with(suffix) || Instant::now() > deadline {
                return at;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    /// Waits until `css`'s text is `want`, without reloading.
    async fn wait_text(&self, css: &str, want: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let got = self.text(css).await;
            if got == want || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn a_browser_signs_in_sends_and_watches_the_message_become_delivered() {
    let Some(driver) = find_driver() else {
        assert!(
            std::env::var_os("SAIREX_BROWSER_TESTS").is_none(),
            "SAIREX_BROWSER_TESTS is set but chromedriver is not installed"
        );
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (_demo, url, email, password, token) = start_demo(dir.path());
    let (browser, session) = Browser::start(&driver).await;
    let page = Page {
        b: &browser,
        s: session.clone(),
    };

    // Signed out: the console sends the browser to the login page.
    page.go(&format!("{url}/")).await;
    assert!(page.url().await.ends_with("/console/login"));
    page.type_in("#email", &email).await;
    page.type_in("#password", "wrong password").await;
    page.click("button[type=submit]").await;
    assert_eq!(page.text(".error").await, "Wrong email or password.");
    page.type_in("#email", &email).await;
    page.type_in("#password", &password).await;
    page.click("button[type=submit]").await;
    let at = page.wait_url("/console/").await;
    assert!(at.ends_with("/console/"), "{at}");
    assert_eq!(page.text("main h1").await, "Dashboard");
    // Phone width: the navigation is still there, every entry reachable.
    assert!(page.count("nav a").await >= 8);

    // Send one message; its status pill turns DELIVERED without a reload (event stream).
    page.go(&format!("{url}/console/send")).await;
    page.type_in("#to", "+923001234567").await;
    page.type_in("#body", "Fee reminder: due Friday").await;
    let preview = page
        .wait_text(
            "#preview",
            "GSM-7 · 1 segment(s) · 24 characters · PKR 0.50",
            Duration::from_secs(5),
        )
        .await;
    assert!(preview.starts_with("GSM-7 · 1 segment"), "{preview}");
    page.click("form[action='/console/send'] button[type=submit]")
        .await;
    assert_eq!(page.text("main h1").await, "Message queued");
    let status = page
        .wait_text("[data-message-id]", "DELIVERED", Duration::from_secs(20))
        .await;
    assert_eq!(status, "DELIVERED");

    // The message log shows it delivered too.
    page.go(&format!("{url}/console/messages")).await;
    assert_eq!(page.text("td .pill").await, "DELIVERED");

    // A CSV import with its progress bar: the script sends the file, moves the bar to 100%
    // and shows the report in place, without leaving the page.
    let csv_path = dir.path().join("contacts.csv");
    let mut csv = String::from("phone,name,fee\n");
    for i in 0..5_000u32 {
        csv.push_str(&format!(
            "+92301{:07},Student {i},{}\n",
            1_000_000 + i,
            1000 + i
        ));
    }
    std::fs::write(&csv_path, csv).expect("csv");
    page.go(&format!("{url}/console/contacts")).await;
    page.click("#preview").await;
    page.type_in("#file", csv_path.to_str().expect("utf-8 path"))
        .await;
    page.click("form[data-progress] button[type=submit]").await;
    let h1 = page
        .wait_for(
            "main h1",
            |t| t == "Contact import",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(h1, "Contact import");
    assert!(
        page.url().await.ends_with("/console/contacts"),
        "no navigation"
    );
    assert_eq!(page.attr("main", "data-upload-progress").await, "100");
    assert_eq!(page.attr("main", "data-upload-status").await, "200");
    let report = page.text("main .ok").await;
    assert!(
        report.starts_with("5000 created, 0 updated, 0 skipped of 5000 row(s)"),
        "{report}"
    );

    // Screenshots of the main pages for the docs, when asked for:
    // SAIREX_CONSOLE_SCREENSHOTS=docs/console cargo test -p sairex --test console_browser
    if let Some(out) = std::env::var_os("SAIREX_CONSOLE_SCREENSHOTS") {
        let out = std::path::PathBuf::from(out);
        std::fs::create_dir_all(&out).expect("screenshot dir");
        browser
            .call(
                reqwest::Method::POST,
                &format!("/session/{session}/window/rect"),
                json!({ "width": 1280, "height": 900 }),
            )
            .await;
        for (name, path) in [
            ("dashboard", "/console/"),
            ("send", "/console/send"),
            ("inbox", "/console/inbox?phone=%2B923001234567"),
            ("messages", "/console/messages"),
            ("contacts", "/console/contacts"),
            ("templates", "/console/templates"),
            ("campaigns", "/console/campaigns"),
            ("reports", "/console/reports"),
            ("settings", "/console/settings"),
        ] {
            page.go(&format!("{url}{path}")).await;
            page.screenshot(&out, name).await;
        }
    }

    // Sign out: the console is closed again.
    page.click("form.logout button").await;
    page.wait_url("/console/login").await;
    page.go(&format!("{url}/console/messages")).await;
    assert!(page.url().await.ends_with("/console/login"));

    // The superadmin signs in with the token: the operator view shows the simulator's bind
    // bound, and its live part reloads itself until the throughput is measured.
    page.go(&format!("{url}/console/operator/login")).await;
    page.type_in("#token", &token).await;
    page.click("button[type=submit]").await;
    let at = page.wait_url("/console/operator").await;
    assert!(at.ends_with("/console/operator"), "{at}");
    assert_eq!(page.text("main h1").await, "Operator view");
    assert_eq!(page.text("#binds td.bind-state").await, "bound");
    assert_eq!(page.text("#binds td.rate").await, "measuring…");
    let rate = page
        .wait_for(
            "#binds td.rate",
            |t| t.ends_with(" msg/s"),
            Duration::from_secs(15),
        )
        .await;
    assert!(rate.ends_with(" msg/s"), "{rate}");
    if let Some(out) = std::env::var_os("SAIREX_CONSOLE_SCREENSHOTS") {
        page.screenshot(Path::new(&out), "operator").await;
    }
    page.click("form.logout button").await;
    let at = page.wait_url("/console/login").await;
    assert!(
        at.ends_with("/console/login"),
        "logout never redirected: {at}"
    );
    page.go(&format!("{url}/console/operator")).await;
    assert!(page.url().await.ends_with("/console/operator/login"));
    browser
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{session}"),
            Value::Null,
        )
        .await;
}

//! The web console's first login without curl: `serve --demo` prints a working login, and
//! `sairex user add` (password on stdin) adds one to a stopped gateway's store.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Demo {
    child: Child,
    url: String,
    email: String,
    password: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_demo(dir: &Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sairex"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sairex serve --demo");
    let stdout = child.stdout.take().expect("stdout");
    let (mut url, mut login) = (None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout line");
        if let Some(rest) = line.split("is running: ").nth(1) {
            url = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.split("sign in as ").nth(1) {
            let (email, rest) = rest.split_once(", password ").expect("email, password");
            login = Some((
                email.to_owned(),
                rest.trim_end_matches(')').trim().to_owned(),
            ));
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    let (email, password) = login.expect("the demo printed a console login");
    Demo {
        child,
        url: url.expect("the demo printed its URL"),
        email,
        password,
    }
}

/// Signs in through the login form; true when the console's dashboard opens.
async fn signs_in(url: &str, email: &str, password: &str) -> bool {
    let http = sairex_engine::http_client::builder()
        .expect("tls")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = http
        .get(format!("{url}/console/login"))
        .send()
        .await
        .expect("login page");
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("login cookie")
        .to_owned();
    let body = form.text().await.expect("body");
    let marker = "name=\"_csrf\" value=\"";
    let at = body.find(marker).expect("csrf field") + marker.len();
    let token = &body[at..at + body[at..].find('"').expect("end")];
    let fields: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("email", email), ("password", password), ("_csrf", token)])
        .finish();
    let login = http
        .post(format!("{url}/console/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(fields)
        .send()
        .await
        .expect("login");
    let Some(session) = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sairex_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
    else {
        return false;
    };
    let home = http
        .get(format!("{url}/console/"))
        .header("cookie", session)
        .send()
        .await
        .expect("dashboard");
    home.status() == 200 && home.text().await.expect("body").contains("Dashboard")
}

#[tokio::test]
async fn the_demo_prints_a_login_and_user_add_creates_one_from_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = start_demo(dir.path());
    assert!(signs_in(&demo.url, &demo.email, &demo.password).await);
    assert!(!signs_in(&demo.url, &demo.email, "not the password").await);
    drop(demo);

    let add = |email: &str, password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sairex"))
            .args(["user", "add", "--data-dir", "sairex-data", "--org", "demo"])
            .args(["--email", email, "--role", "admin"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sairex user add");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write password");
        child.wait_with_output().expect("user add")
    };
    let out = add("head@school.pk", "a long passphrase");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("head@school.pk"));
    let again = add("head@school.pk", "a long passphrase");
    assert!(!again.status.success(), "the email is taken");
    let weak = add("weak@school.pk", "short");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 8"));

    let demo = start_demo(dir.path());
    assert!(signs_in(&demo.url, "head@school.pk", "a long passphrase").await);
}

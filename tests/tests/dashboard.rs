//! The dashboard (`/ui`) in a real browser: Debian's headless Chromium,
//! driven over WebDriver (`chromedriver`, started here on a free port)
//! against a real gateway and worker. The pages load without console or CSP
//! errors, show a task the test submits, follow it live to its end through
//! the event stream, cancel a slow task and retry it from its page, and show
//! a dead letter that is replayed from the page (and one whose task already
//! ran, which replay refuses). Screenshots are kept in `target/dashboard/`;
//! the page load time (Navigation Timing) is printed, not asserted.
//!
//! Skipped, with a message, when chromedriver is missing and
//! `YADTQ_TEST_LOCAL_SERVICES` is unset; `scripts/test.sh` installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use yadtq_core::store::tasks::{self as store, BatchInsert, Sent};
use yadtq_tests::{echo_task, free_port, mint_key, wait_for, Gateway, Stack};

const LONG: Duration = Duration::from_secs(120);

/// chromedriver to use: `YADTQ_CHROMEDRIVER`, else Debian's, else one on `PATH`.
fn chromedriver() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("YADTQ_CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    let debian = Path::new("/usr/bin/chromedriver");
    if debian.exists() {
        return Some(debian.to_path_buf());
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("chromedriver")).find(|p| p.exists())
}

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A chromedriver process and a headless Chromium session on it.
struct Browser {
    client: Client,
    driver: Child,
    driver_url: String,
    session: String,
    http: reqwest::Client,
    shots: PathBuf,
}

impl Browser {
    async fn start(driver: &Path) -> Self {
        let port = free_port();
        let log = shots_dir().join("chromedriver.log");
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        wait_for(Duration::from_secs(30), "chromedriver /status", || async {
            http.get(format!("{driver_url}/status")).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        let mut caps = serde_json::Map::new();
        let mut chrome = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1500,950", "--no-first-run", "--no-default-browser-check"],
        });
        if Path::new("/usr/bin/chromium").exists() {
            chrome["binary"] = json!("/usr/bin/chromium");
        }
        caps.insert("goog:chromeOptions".into(), chrome);
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("a Chromium session");
        let session = client.session_id().await.expect("session id").expect("a session");
        Self { client, driver: child, driver_url, session, http, shots: shots_dir() }
    }

    /// The browser console entries since the last call (chromedriver's log
    /// endpoint: console messages, failed loads and CSP violations).
    async fn console(&self) -> Vec<Value> {
        let url = format!("{}/session/{}/se/log", self.driver_url, self.session);
        let resp = self.http.post(url).json(&json!({"type": "browser"})).send().await.expect("browser log");
        let body: Value = resp.json().await.expect("browser log JSON");
        body["value"].as_array().cloned().unwrap_or_default()
    }

    /// Asserts the console holds no error (`SEVERE`) and no CSP report,
    /// except entries containing one of `expected`.
    async fn assert_clean_console(&self, page: &str, expected: &[&str]) {
        let bad: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| {
                let msg = e["message"].as_str().unwrap_or_default();
                (e["level"] == "SEVERE" || msg.contains("Content Security Policy"))
                    && !expected.iter().any(|x| msg.contains(x))
            })
            .collect();
        assert!(bad.is_empty(), "console errors on {page}: {bad:#?}");
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Waits until the element at `css` exists and its text satisfies `ok`; returns the text.
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LONG;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if ok(&text) {
                        return text;
                    }
                    last = text;
                }
            }
            assert!(Instant::now() < deadline, "{css}: waited {LONG:?} for {what}; last text {last:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `css` once it is there. A live page re-renders on each event
    /// of the task, so an element found may be replaced before the click
    /// lands (a stale element): it is found again, as a user would click again.
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + LONG;
        loop {
            let el = self.client.wait().at_most(LONG).for_element(Locator::Css(css)).await.expect(css);
            match el.click().await {
                Ok(()) => return,
                Err(e) if e.to_string().contains("stale element") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Navigation Timing of the current page: (DOMContentLoaded, load) in ms from navigation start.
    async fn load_times(&self) -> (f64, f64) {
        let t = self
            .client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0];
                 return [n.domContentLoadedEventEnd - n.startTime, n.loadEventEnd - n.startTime];",
                vec![],
            )
            .await
            .expect("navigation timing");
        (t[0].as_f64().unwrap_or(f64::NAN), t[1].as_f64().unwrap_or(f64::NAN))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing chromedriver would leave its Chromium running: end the
        // session first (chromedriver then quits the browser), with a plain
        // blocking request, since a drop (a panic's too) cannot await.
        use std::io::{Read, Write};
        let addr = self.driver_url.trim_start_matches("http://").to_string();
        if let Ok(mut conn) = std::net::TcpStream::connect(&addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            // Wait for the answer (its JSON body ends the exchange; chromedriver
            // may keep the connection open past it).
            let (mut answer, mut chunk) = (Vec::new(), [0u8; 4096]);
            if conn.write_all(request.as_bytes()).is_ok() {
                while let Ok(n @ 1..) = conn.read(&mut chunk) {
                    answer.extend_from_slice(&chunk[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn task_field(gw: &Gateway, id: &str, field: &str) -> Value {
    gw.get(&format!("/tasks/{id}")).await.body[field].clone()
}

#[tokio::test]
async fn the_dashboard_shows_follows_cancels_and_replays_in_a_real_browser() {
    let Some(driver) = chromedriver() else {
        assert!(
            std::env::var_os("YADTQ_TEST_LOCAL_SERVICES").is_none(),
            "chromedriver is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
        );
        eprintln!(
            "SKIPPED: chromedriver not found (apt-get install chromium chromium-driver, or set YADTQ_CHROMEDRIVER)"
        );
        return;
    };
    let stack = Stack::new("dashboard").await;
    let gw = stack.gateway(&["--queues", "default,emails", "--dead-letter-preview-bytes", "2000"]).await;
    let worker = stack.worker("worker", &["--concurrency", "4", "--queues", "default,emails"]).await;
    stack.wait_assigned(&worker).await;
    let worker_id = stack.worker_id(&worker).await;

    // The pages are public and carry the security headers.
    let http = reqwest::Client::new();
    for (path, kind) in [("/ui", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let resp = http.get(format!("{}{path}", gw.base)).send().await.expect(path);
        assert_eq!(resp.status(), 200, "{path}");
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(header("content-type").starts_with(kind), "{path}: {}", header("content-type"));
        let csp = header("content-security-policy");
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }

    let browser = Browser::start(&driver).await;
    let ui = format!("{}/ui", gw.base);

    // A finished task first, so the overview has throughput to show.
    let done = gw.submit(&json!({"id": "ui-add", "task": "add", "args": [20, 22]})).await;
    assert_eq!(done.status, 202, "{}", done.text);
    gw.wait_task("ui-add", LONG).await;

    // Without a key the page loads but the API answers 401; the key form:
    // a pasted key is kept for the tab and sent on every request.
    browser.goto(&ui).await;
    let (dom, load) = browser.load_times().await;
    println!("dashboard page load (Navigation Timing, headless Chromium, same host): DOMContentLoaded {dom:.0} ms, load {load:.0} ms");
    let input = browser.client.find(Locator::Css("#api-key")).await.expect("key field");
    input.send_keys(&stack.api_key).await.expect("type the key");
    browser.click("#key-form button[type=submit]").await;
    browser.wait_text("#key-state", "the key stored", |t| t.contains("key set")).await;
    let stored = browser.client.execute("return sessionStorage.getItem('yadtq.apiKey');", vec![]).await.unwrap();
    assert_eq!(stored, json!(stack.api_key));

    // A task a paused limit holds (docs/limits.md): counted in the Held column.
    let paused = gw
        .send(
            reqwest::Method::PUT,
            "/limits/ui-paused",
            &[("content-type", "application/json")],
            Some(json!({"concurrency": 0}).to_string()),
        )
        .await;
    assert_eq!(paused.status, 201, "{}", paused.text);
    let held = gw.submit(&json!({"id": "ui-limited", "task": "add", "args": [1, 1], "limits": ["ui-paused"]})).await;
    assert_eq!(held.body["status"], "held", "{}", held.text);

    // Overview: the default queue's row, the live worker.
    browser.goto(&ui).await;
    browser.wait_text("#queues tr[data-queue=default] td[data-count=success]", "a success counted", |t| t != "0").await;
    browser
        .wait_text("#queues tr[data-queue=default] td[data-count=held]", "the held task counted", |t| t == "1")
        .await;
    browser.wait_text("#workers-alive", "one worker alive", |t| t == "1").await;
    browser.shot("overview").await;
    // The first visit's requests without a key were answered 401.
    browser.assert_clean_console("the overview", &["401"]).await;

    // A task submitted by the test shows in the list; its page follows it
    // live (the page reads the event stream and does not poll) to success.
    let live = gw.submit(&json!({"id": "ui-sleep", "task": "sleep", "args": [3]})).await;
    assert_eq!(live.status, 202, "{}", live.text);
    browser.goto(&format!("{ui}#/tasks")).await;
    browser
        .wait_text("#tasks tr[data-id=ui-sleep] td:nth-child(2)", "the submitted task listed", |t| t == "sleep")
        .await;
    browser.shot("tasks").await;
    browser.click("#tasks tr[data-id=ui-sleep] a").await;
    browser.wait_text("#task-details #status", "the task's page", |t| !t.is_empty()).await;
    let status = browser.wait_text("#task-details #status", "the task to finish, live", |t| t == "success").await;
    assert_eq!(status, "success");
    browser.wait_text("#result", "its result", |t| t.trim().starts_with('3')).await;
    browser
        .wait_text("#attempts tr[data-attempt='1'] td:nth-child(5)", "attempt 1 succeeded", |t| t == "success")
        .await;
    assert_eq!(task_field(&gw, "ui-sleep", "status").await, "success");
    browser.shot("task").await;
    browser.assert_clean_console("a task's page", &[]).await;

    // Cancel from the page: a slow task, running, ends `cancelled` in the API.
    let slow = gw.submit(&json!({"id": "ui-slow", "task": "sleep", "args": [600]})).await;
    assert_eq!(slow.status, 202, "{}", slow.text);
    wait_for(LONG, "ui-slow processing", || async { task_field(&gw, "ui-slow", "status").await == "processing" }).await;
    browser.goto(&format!("{ui}#/tasks/ui-slow")).await;
    browser.wait_text("#task-details #status", "the slow task running", |t| t == "processing").await;
    browser.click("#cancel").await;
    let t = gw.wait_task("ui-slow", LONG).await;
    assert_eq!(t["status"], "cancelled", "{t}");
    browser.wait_text("#task-details #status", "the page to show the cancel", |t| t == "cancelled").await;
    browser.shot("cancelled").await;

    // Retry from the page: a new attempt of the cancelled task starts.
    browser.click("#retry").await;
    wait_for(LONG, "ui-slow running again", || async {
        let t = gw.get("/tasks/ui-slow").await.body;
        t["status"] == "processing" && t["attempts"] == 2
    })
    .await;
    browser.wait_text("#task-details #status", "the page to follow the retry", |t| t == "processing").await;
    let again = gw.post_raw("/tasks/ui-slow/cancel", "{}", &[]).await;
    assert_eq!(again.status, 202, "{}", again.text);
    browser.wait_text("#task-details #status", "the second cancel", |t| t == "cancelled").await;
    browser.assert_clean_console("the cancel and retry", &[]).await;

    // A key that may read but not operate gets no Cancel or Retry button,
    // neither on a running task nor on a cancelled one.
    let reader = mint_key(&stack.db, "default", &[yadtq_core::auth::Scope::Read], None).await;
    let held = gw.submit(&json!({"id": "ui-held", "task": "sleep", "args": [600]})).await;
    assert_eq!(held.status, 202, "{}", held.text);
    wait_for(LONG, "ui-held processing", || async { task_field(&gw, "ui-held", "status").await == "processing" }).await;
    let set_key = "sessionStorage.setItem('yadtq.apiKey', arguments[0]);";
    browser.client.execute(set_key, vec![json!(reader)]).await.expect("store the read-only key");
    for (id, status) in [("ui-held", "processing"), ("ui-slow", "cancelled")] {
        browser.goto(&format!("{ui}#/tasks/{id}")).await;
        browser.wait_text("#task-details #status", "the task's page with a read-only key", |t| t == status).await;
        let buttons = browser.client.find_all(Locator::Css(".actions button")).await.expect("find buttons");
        assert!(buttons.is_empty(), "{id}: {} action button(s) shown to a key without operate", buttons.len());
    }
    browser.shot("read-only-task").await;
    browser.client.execute(set_key, vec![json!(stack.api_key)]).await.expect("store the admin key again");
    let c = gw.post_raw("/tasks/ui-held/cancel", "{}", &[]).await;
    assert_eq!(c.status, 202, "{}", c.text);
    assert_eq!(gw.wait_task("ui-held", LONG).await["status"], "cancelled");
    browser.assert_clean_console("the read-only key's pages", &[]).await;

    // Workers: the one worker, alive and ready, with its partitions.
    browser.goto(&format!("{ui}#/workers")).await;
    let row = format!("#workers tr[data-worker='{worker_id}']");
    browser.wait_text(&format!("{row} td:nth-child(3)"), "the worker ready", |t| t == "ready").await;
    let partitions = browser.wait_text(&format!("{row} td:nth-child(6)"), "its partitions", |t| t != "–").await;
    assert!(partitions.contains("yadtq.tasks"), "{partitions}");
    browser.shot("workers").await;

    // Dead letters. A task whose only record the worker could not read (as
    // a newer gateway's envelope would be): its row is queued and marked
    // published, so only a replay runs it. And a record naming a task that
    // already ran: replay refuses it, and the task keeps its one run.
    let stuck = echo_task("ui-stuck".into(), r#"["replayed"]"#.into());
    assert!(matches!(store::insert_batch(&stack.db, &[stuck]).await.unwrap(), BatchInsert::Done(_)));
    store::mark_published(
        &stack.db,
        &[Sent { id: yadtq_core::names::TaskKey::from_stored("ui-stuck".into()), attempts: 0 }],
    )
    .await
    .unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let topic = format!("{}.yadtq.tasks", stack.namespace);
    for key in ["ui-stuck", "ui-add"] {
        let value = json!({"v": 2, "id": key, "task": "echo", "args": ["replayed"], "kwargs": {}, "queue": "default",
                           "attempt": 0, "submitted_at": "2026-01-01T00:00:00Z"});
        producer
            .send(FutureRecord::to(&topic).key(key).payload(&value.to_string()), Duration::from_secs(10))
            .await
            .expect("produce a record the worker cannot read");
    }
    // And a large record that is not JSON at all, naming no task.
    let big = "x".repeat(10_000);
    producer
        .send(FutureRecord::to(&topic).key("ui-big").payload(&big), Duration::from_secs(10))
        .await
        .expect("produce a record that is not JSON");
    wait_for(LONG, "three dead letters", || async {
        gw.get("/dead-letters").await.body["dead_letters"].as_array().is_some_and(|d| d.len() == 3)
    })
    .await;
    let listed = gw.get("/dead-letters").await.body;
    assert_eq!(listed["retained"], 3, "{listed}");
    let row = listed["dead_letters"].as_array().unwrap().iter().find(|d| d["key"] == "ui-big").cloned().unwrap();
    assert_eq!((row["truncated"].as_bool(), row["payload_bytes"].as_u64()), (Some(true), Some(10_000)), "{row}");
    assert_eq!(row["payload"].as_str().map(str::len), Some(2000), "a listing shows --dead-letter-preview-bytes");
    let addr = format!("/dead-letters/{}/{}", row["partition"], row["offset"]);
    let whole = gw.get(&addr).await;
    assert_eq!((whole.status, whole.body["payload"].as_str().map(str::len)), (200, Some(10_000)), "{addr}");
    assert_eq!(whole.body["truncated"], false);
    let nothing = gw.post_raw(&format!("{addr}/replay"), "{}", &[]).await;
    assert_eq!((nothing.status, nothing.body["field"].as_str()), (409, Some("key")), "{}", nothing.text);
    let gone = gw.get(&format!("/dead-letters/{}/999", row["partition"])).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(task_field(&gw, "ui-stuck", "status").await, "queued", "nothing runs it but a replay");

    browser.goto(&format!("{ui}#/dead-letters")).await;
    let reason = browser
        .wait_text("#dead-letters tr[data-key=ui-stuck] td:nth-child(4)", "the dead letter listed", |t| !t.is_empty())
        .await;
    assert!(reason.contains("unknown envelope version 2"), "{reason}");
    browser.shot("dead-letters").await;
    browser.click("#dead-letters tr[data-key=ui-stuck] button.replay").await;
    browser
        .wait_text("#dead-letters tr[data-key=ui-stuck] .replay-result", "the replay sent", |t| {
            t.contains("Sent again")
        })
        .await;
    let t = gw.wait_task("ui-stuck", LONG).await;
    assert_eq!((t["status"].as_str(), t["result"].clone()), (Some("success"), json!(["replayed"])), "{t}");

    browser.click("#dead-letters tr[data-key=ui-add] button.replay").await;
    let refused = browser
        .wait_text("#dead-letters tr[data-key=ui-add] .replay-result", "the replay refused", |t| t.starts_with("409"))
        .await;
    assert!(refused.contains("already"), "{refused}");
    browser.shot("dead-letters-replayed").await;
    // The replay that sent is in the audit log; the refused ones are not.
    let audit = gw.get("/admin/audit").await.body;
    let replays: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "dead_letter.replay").collect();
    assert_eq!(replays.len(), 1, "{audit}");
    assert_eq!((replays[0]["target"].as_str(), replays[0]["tenant"].as_str()), (Some("ui-stuck"), Some("default")));
    assert!(replays[0]["actor"].as_str().is_some_and(|a| a.starts_with("key:")), "{audit}");
    assert!(replays[0]["detail"]["offset"].is_i64(), "{audit}");
    // The refused replay's 409 is the one error the console may show.
    browser.assert_clean_console("the dead letters", &["status of 409"]).await;
    let ids = ["ui-add", "ui-sleep", "ui-stuck"].map(String::from);
    stack.assert_ran_once(&ids, "each task ran exactly once").await;

    // Every page with the README's key (`submit,read`): each says what the
    // key may see (its scopes, from GET /me), shows what `read` allows and
    // asks for nothing it would be refused (no 403, so no banner, which
    // would otherwise stay on every later page). Queue figures need
    // `operate`, dead letters `admin` (or `cluster`): the pages say so.
    use yadtq_core::auth::Scope;
    let banner_hidden = || async {
        let hidden = browser.client.execute("return document.getElementById('banner').hidden;", vec![]).await;
        hidden.expect("read the banner") == json!(true)
    };
    let pages: [(&str, &str, &str); 5] = [
        ("#/", "#workers-alive", "1"),
        ("#/tasks", "#tasks tr[data-id=ui-sleep] td:nth-child(4)", "success"),
        ("#/tasks/ui-sleep", "#task-details #status", "success"),
        ("#/workers", "#workers td:nth-child(3)", "ready"),
        ("#/dead-letters", "#dead-letters-note", "admin"),
    ];
    // The README's key, then one that may only read; the last one stays
    // for the checks below.
    for (scopes, shown) in [(&[Scope::Submit, Scope::Read][..], "submit, read"), (&[Scope::Read][..], "read")] {
        let key = mint_key(&stack.db, "default", scopes, None).await;
        browser.client.execute(set_key, vec![json!(key)]).await.expect("store the key");
        for (i, (page, css, want)) in pages.into_iter().enumerate() {
            if i == 0 {
                browser.goto(&format!("{ui}{page}")).await;
            } else {
                // Through the page's own navigation, as a user moves around.
                browser.client.execute("location.hash = arguments[0];", vec![json!(page)]).await.expect(page);
            }
            browser
                .wait_text("#key-scopes", "the key's scopes shown", |t| {
                    t.trim_end().ends_with(&format!("scopes: {shown}"))
                })
                .await;
            browser.wait_text(css, &format!("{page} with a {shown} key"), |t| t.contains(want)).await;
            assert!(banner_hidden().await, "{page}: the banner is shown to a {shown} key");
            let text = browser.client.find(Locator::Css("#view")).await.expect("#view").text().await.expect("its text");
            assert!(!text.contains("[object"), "{page}: a node shown as text: {text}");
            let name = match page.trim_start_matches("#/") {
                "" => "overview".to_string(),
                p => p.replace('/', "-"),
            };
            browser.shot(&format!("{}-{name}", shown.replace(", ", "-"))).await;
        }
    }
    // What the overview cannot show, it says; the dead-letters hint names
    // the scopes that read them.
    browser.goto(&ui).await;
    let note = browser.wait_text("#queues-note", "the queues' scope note", |t| !t.is_empty()).await;
    assert!(note.contains("operate"), "{note}");
    let note = browser.wait_text("#dead-letters-count-note", "the dead letters' note", |t| !t.is_empty()).await;
    assert!(note.contains("admin") && note.contains("cluster"), "{note}");
    browser.goto(&format!("{ui}#/dead-letters")).await;
    let note = browser.wait_text("#dead-letters-note", "the dead letters' scope note", |t| !t.is_empty()).await;
    assert!(note.contains("admin") && note.contains("cluster") && !note.contains("operate"), "{note}");
    let rows = browser.client.find_all(Locator::Css("#dead-letters tr[data-address]")).await.expect("rows");
    assert!(rows.is_empty(), "dead letters shown to a key without admin");
    // A finished task shows 100 % (the last progress it reported was 67 %).
    browser.goto(&format!("{ui}#/tasks")).await;
    let progress = browser
        .wait_text("#tasks tr[data-id=ui-sleep] td:nth-child(6)", "the finished task's progress", |t| !t.is_empty())
        .await;
    assert_eq!(progress, "100 %", "a successful task's progress");
    browser.assert_clean_console("the submit,read key's pages", &[]).await;
    browser.client.execute(set_key, vec![json!(stack.api_key)]).await.expect("store the admin key again");

    // Back to the overview, for the README, after a mixed load on two
    // queues: successes, permanent failures, and tasks still running.
    let mut batch: Vec<Value> = (0..40)
        .map(|i| match i % 8 {
            7 => json!({"task": "fail", "args": ["boom"], "max_retries": 0, "queue": "emails"}),
            n if n % 2 == 0 => json!({"task": "add", "args": [i, n]}),
            _ => json!({"task": "multiply", "args": [i, 3], "queue": "emails"}),
        })
        .collect();
    batch.extend((0..2).map(|_| json!({"task": "sleep", "args": [120], "queue": "emails"})));
    let sent = gw.post_raw("/tasks/batch", json!({"tasks": batch}).to_string(), &[]).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    wait_for(LONG, "the batch to finish but the two sleeps", || async {
        let q = gw.get("/queues").await.body;
        let emails = q["queues"].as_array().and_then(|qs| qs.iter().find(|q| q["queue"] == "emails").cloned());
        emails.is_some_and(|e| e["processing"] == 2 && e["queued"] == 0 && e["finished"]["failed"] == 5)
    })
    .await;
    // What the overview's reads cost (printed, not asserted): the pages
    // call these every 2 s.
    for path in ["/queues", "/workers?alive=true", "/dead-letters?limit=1"] {
        let mut ms = Vec::new();
        for _ in 0..10 {
            let t0 = Instant::now();
            assert_eq!(gw.get(path).await.status, 200, "{path}");
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        println!("GET {path}: median {:.1} ms, max {:.1} ms over 10 (debug gateway)", ms[5], ms[9]);
    }
    browser.goto(&ui).await;
    browser
        .wait_text("#queues tr[data-queue=emails] td[data-count=failed]", "the failures counted", |t| t == "5")
        .await;
    // The workers commit offsets every second: the drained queue's lag
    // reaches 0; the sleeps hold their partitions' offsets, so emails keeps some.
    browser.wait_text("#queues tr[data-queue=default] td[data-count=lag]", "no lag on default", |t| t == "0").await;
    browser.wait_text("#slots-busy", "the two sleeps in flight", |t| t == "2/4").await;
    browser
        .wait_text("#queues tr[data-queue=default] td[data-count=cancelled]", "the cancel counted", |t| t != "0")
        .await;
    browser.shot("dashboard").await;
    browser.assert_clean_console("the overview", &[]).await;
}

/// The schedules page: a schedule's row with its runs, pause and resume
/// from the page (the API then says so), and its tasks' listing.
#[tokio::test]
async fn the_schedules_page_lists_pauses_and_resumes_in_a_real_browser() {
    let Some(driver) = chromedriver() else {
        assert!(
            std::env::var_os("YADTQ_TEST_LOCAL_SERVICES").is_none(),
            "chromedriver is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
        );
        eprintln!("SKIPPED: chromedriver not found");
        return;
    };
    let stack = Stack::new("dash_sched").await;
    let gw = stack.gateway(&[]).await;
    let _worker = stack.worker("worker", &[]).await;
    let body = json!({"id": "ui-beat", "spec": {"every": 1}, "overlap": "allow_all", "task": {"task": "echo"}});
    let created = gw.post_raw("/schedules", body.to_string(), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);

    let browser = Browser::start(&driver).await;
    let ui = format!("{}/ui", gw.base);
    browser.goto(&format!("{ui}#/schedules")).await;
    let input = browser.client.find(Locator::Css("#api-key")).await.expect("key field");
    input.send_keys(&stack.api_key).await.expect("type the key");
    browser.click("#key-form button[type=submit]").await;
    let row = "#schedules tr[data-schedule=ui-beat]";
    browser.wait_text(&format!("{row} td.runs"), "runs counted", |t| t.parse::<i64>().is_ok_and(|n| n > 0)).await;
    browser.shot("schedules").await;

    let paused = || async { gw.get("/schedules/ui-beat").await.body["paused"].clone() };
    browser.click(&format!("{row} button.pause")).await;
    wait_for(LONG, "the schedule paused", || async { paused().await == json!(true) }).await;
    browser.wait_text(&format!("{row} td.paused"), "shown paused", |t| t == "yes").await;
    browser.wait_text(&format!("{row} button.pause"), "a resume button", |t| t == "Resume").await;
    browser.click(&format!("{row} button.pause")).await;
    wait_for(LONG, "the schedule resumed", || async { paused().await == json!(false) }).await;

    browser.click(&format!("{row} a.tasks")).await;
    let first =
        browser.wait_text("#tasks tbody tr td:first-child", "a fired task", |t| t.starts_with("sched:ui-beat:")).await;
    assert!(first.starts_with("sched:ui-beat:"), "{first}");
    browser.assert_clean_console("the schedules page", &["401"]).await;
}

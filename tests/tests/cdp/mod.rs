//! Headless Chromium driven over the Chrome DevTools Protocol, for what a
//! one-shot `--dump-dom` run cannot express: a reader who clicks into the
//! search box, types, presses Enter, follows a menu link, and what an
//! input then holds (its value is a property, not in the serialised DOM).
//!
//! The browser is started with `--remote-debugging-port=0` and a fresh
//! profile; the port it picked is read from the profile's
//! `DevToolsActivePort` file, the page's WebSocket from `/json/list`, and
//! commands go over that WebSocket (`tungstenite`, blocking, with a read
//! timeout). Input is dispatched as real mouse and key events
//! (`Input.dispatchMouseEvent`, `Input.dispatchKeyEvent`), so the page's
//! own handlers run as they do for a person. Every wait has a deadline.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use alliance_tests::{http_get, poll_until};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// Flags of every headless run: a fresh profile's browser with no
/// network of its own besides the page.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

/// Longest the browser may take to start and offer its page.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one protocol command may take to be answered.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A command in its own process group (no standard input, stdout and
/// stderr to a log file), killed with everything it started on drop,
/// unless it has exited.
pub struct ProcessGroup {
    child: Child,
    exited: Option<ExitStatus>,
}

impl ProcessGroup {
    /// Spawns `cmd`, its output to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Result<ProcessGroup, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
        Ok(ProcessGroup {
            child,
            exited: None,
        })
    }

    /// Its exit status, once it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// One page of a headless Chromium, driven over the DevTools protocol.
pub struct Page {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    // Dropped after the socket: the browser goes last.
    _browser: ProcessGroup,
}

impl Page {
    /// Starts `chromium` headless with a fresh profile in `profile` (its
    /// output to `log`) and loads `url` in its page.
    pub fn open(chromium: &Path, profile: &Path, log: &Path, url: &str) -> Result<Page, String> {
        let browser = ProcessGroup::spawn(
            Command::new(chromium)
                .args(HEADLESS)
                .arg("--remote-debugging-port=0")
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("--window-size=1280,1000")
                .arg("about:blank"),
            log,
        )?;
        // The port it listens on: the first line of DevToolsActivePort.
        let active = profile.join("DevToolsActivePort");
        let port: u16 = poll_until(START_TIMEOUT, || {
            std::fs::read_to_string(&active)
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .ok_or_else(|| format!("no {} after {START_TIMEOUT:?}", active.display()))?;
        let ws_url = poll_until(START_TIMEOUT, || {
            let targets = http_get(&format!("http://127.0.0.1:{port}/json/list"))?;
            targets.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
                .as_str()
                .map(String::from)
        })
        .ok_or_else(|| format!("no page target on port {port} after {START_TIMEOUT:?}"))?;
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let (ws, _) =
            tungstenite::client(ws_url.as_str(), stream).map_err(|e| format!("{ws_url}: {e}"))?;
        let mut page = Page {
            ws,
            next_id: 0,
            _browser: browser,
        };
        page.call("Page.navigate", json!({ "url": url }))?;
        // Loaded: the new document complete (while it replaces the blank
        // one, an evaluation may find no context: not yet).
        let loaded = format!(
            "location.href === {} && document.readyState === 'complete'",
            json!(url)
        );
        let deadline = Instant::now() + START_TIMEOUT;
        while page.eval(&loaded).ok() != Some(Value::Bool(true)) {
            if Instant::now() >= deadline {
                return Err(format!("{url} not loaded after {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(page)
    }

    /// Sends one command and returns its result (events in between are
    /// passed over).
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(command.to_string()))
            .map_err(|e| format!("{method}: {e}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        while Instant::now() < deadline {
            let msg = self.ws.read().map_err(|e| format!("{method}: {e}"))?;
            let Message::Text(text) = msg else { continue };
            let answer: Value =
                serde_json::from_str(text.as_str()).map_err(|e| format!("{method}: {e}"))?;
            if answer["id"] != id {
                continue;
            }
            if let Some(e) = answer.get("error") {
                return Err(format!("{method}: {e}"));
            }
            return Ok(answer["result"].clone());
        }
        Err(format!("{method}: no answer within {CALL_TIMEOUT:?}"))
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its
    /// value as JSON; a thrown exception is an error.
    pub fn eval(&mut self, js: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("{js}: {}", ex["exception"]["description"]));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `js` until it returns something other than `null` (or
    /// `undefined`), and returns that; an error after `timeout`, with the
    /// page's text.
    pub fn wait(&mut self, what: &str, timeout: Duration, js: &str) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(js)?;
            if !v.is_null() {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                let text = self
                    .eval("location.href + '\\n' + document.body.innerText")
                    .unwrap_or_default();
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what}; the page:\n{}",
                    text.as_str().unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A left click in the middle of the element `selector` (scrolled into
    /// view first), as mouse events.
    pub fn click(&mut self, selector: &str) -> Result<(), String> {
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{ block: 'center' }}); const r = e.getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            sel = json!(selector)
        ))?;
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            return Err(format!("no element {selector} to click"));
        };
        self.call(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y }),
        )?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )?;
        }
        Ok(())
    }

    /// The browser's back button: the previous entry of the page's
    /// navigation history.
    pub fn back(&mut self) -> Result<(), String> {
        let h = self.call("Page.getNavigationHistory", json!({}))?;
        let current = h["currentIndex"].as_u64().unwrap_or(0) as usize;
        let entry = current
            .checked_sub(1)
            .and_then(|i| h["entries"][i]["id"].as_u64())
            .ok_or_else(|| format!("no history entry before the current one: {h}"))?;
        self.call("Page.navigateToHistoryEntry", json!({ "entryId": entry }))
            .map(drop)
    }

    /// Types `text` into the focused element.
    pub fn type_text(&mut self, text: &str) -> Result<(), String> {
        self.call("Input.insertText", json!({ "text": text }))
            .map(drop)
    }

    /// Presses and releases Enter in the focused element.
    pub fn press_enter(&mut self) -> Result<(), String> {
        let key = json!({
            "type": "keyDown", "key": "Enter", "code": "Enter",
            "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
            "text": "\r", "unmodifiedText": "\r",
        });
        self.call("Input.dispatchKeyEvent", key)?;
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyUp", "key": "Enter", "code": "Enter",
                    "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13 }),
        )
        .map(drop)
    }
}

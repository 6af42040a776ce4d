//! A running `alliance-node devnet` (the README's main command): four
//! nodes and the demo, started the way a user starts it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{free_port_range, node_binary, poll_until};

/// Longest the devnet may take to run its demo and print its banner.
pub const DEVNET_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `alliance-node devnet`; Ctrl-C (SIGINT) on drop.
pub struct Devnet {
    child: Child,
    /// Its working directory (`--dir`: homes, genesis, node logs).
    pub dir: PathBuf,
    /// The first node's API port (node `i` answers on `api_port + i`).
    pub api_port: u16,
    /// What it printed up to and including its "Press Ctrl-C" line.
    pub banner: String,
}

impl Devnet {
    /// Starts a devnet in `dir` on free ports and waits for its demo;
    /// `Err(output so far)` if it exits or stalls first (it is stopped).
    pub fn start(dir: &Path) -> Result<Devnet, String> {
        let (api, p2p) = (free_port_range(4), free_port_range(4));
        let mut child = Command::new(node_binary())
            .args(["devnet", "--api-port", &api.to_string()])
            .args(["--p2p-port", &p2p.to_string(), "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut devnet = Devnet {
            child,
            dir: dir.to_path_buf(),
            api_port: api,
            banner: String::new(),
        };
        // Read on a thread so a silent devnet cannot hang the test; keep
        // draining to the end (the devnet prints when it stops).
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + DEVNET_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    devnet.banner.push_str(&line);
                    devnet.banner.push('\n');
                    if line.contains("Press Ctrl-C") {
                        return Ok(devnet);
                    }
                }
                Err(_) => {
                    devnet.stop();
                    return Err(std::mem::take(&mut devnet.banner));
                }
            }
        }
    }

    /// The first node's API base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// SIGINT (Ctrl-C, to the devnet process only), then SIGKILL if it has
    /// not exited within 30 s (`None` then).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let exited = poll_until(Duration::from_secs(30), || {
            self.child.try_wait().ok().flatten()
        });
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        exited
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

//! A small blocking JSON client for the node's HTTP API (`/v1`), with
//! timeouts on every call and errors that say what to fix.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Connect timeout for every request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout for every request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing answered (refused, DNS, timeout...).
    #[error(
        "cannot reach node at {url}: {why}: is it running? pass --node URL or set ALLIANCE_NODE"
    )]
    Unreachable {
        /// The base URL.
        url: String,
        /// The transport error.
        why: String,
    },
    /// The API answered with `{"error": {"code", "message"}}` and a 4xx/5xx.
    #[error("node answered {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Human message.
        message: String,
    },
    /// The answer was not what this client understands.
    #[error("unexpected answer from node at {url} ({path}): {why}")]
    Unexpected {
        /// The base URL.
        url: String,
        /// Request path.
        path: String,
        /// What was wrong.
        why: String,
    },
}

impl HttpError {
    /// The API error code, if the node answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            HttpError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client for one node.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn finish(
        &self,
        path: &str,
        r: Result<ureq::Response, ureq::Error>,
    ) -> Result<Value, HttpError> {
        match r {
            Ok(resp) => resp.into_json().map_err(|e| HttpError::Unexpected {
                url: self.base.clone(),
                path: path.to_string(),
                why: format!("not JSON: {e}"),
            }),
            Err(ureq::Error::Status(status, resp)) => {
                let body: Option<Value> = resp.into_json().ok();
                let err = body.as_ref().and_then(|b| b.get("error"));
                let code = err
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or("http_error")
                    .to_string();
                let message = err
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status} on {path}"));
                Err(HttpError::Api {
                    status,
                    code,
                    message,
                })
            }
            Err(ureq::Error::Transport(t)) => Err(HttpError::Unreachable {
                url: self.base.clone(),
                why: t.to_string(),
            }),
        }
    }

    /// GET `path` (e.g. `/v1/status`) as JSON.
    pub fn get(&self, path: &str) -> Result<Value, HttpError> {
        let r = self.agent.get(&format!("{}{path}", self.base)).call();
        self.finish(path, r)
    }

    /// POST JSON to `path`.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, HttpError> {
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .send_json(body.clone());
        self.finish(path, r)
    }

    /// GET `path` and decode it into `T`.
    pub fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<(T, Value), HttpError> {
        let v = self.get(path)?;
        let t = self.decode(path, &v)?;
        Ok((t, v))
    }

    /// Decodes a JSON answer into `T`, with a clear error.
    pub fn decode<T: DeserializeOwned>(&self, path: &str, v: &Value) -> Result<T, HttpError> {
        T::deserialize(v).map_err(|e| HttpError::Unexpected {
            url: self.base.clone(),
            path: path.to_string(),
            why: e.to_string(),
        })
    }
}

//! The block explorer: a single-page web app each node serves at `/`.
//!
//! Vanilla JavaScript, no build step, no framework, no external fetch (the
//! machines running nodes are often offline): the page, its script and its
//! style sheet are compiled into the binary with `include_str!` and call
//! only this node's JSON API (`/v1/...`) and event stream (`/v1/events`).
//! A strict Content-Security-Policy (`'self'` only) makes the browser refuse
//! anything else. See docs/explorer.md.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The page shell.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// The application script.
pub const APP_JS: &str = include_str!("assets/app.js");
/// The style sheet.
pub const STYLE_CSS: &str = include_str!("assets/style.css");
/// The icon.
pub const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// Only this origin: no CDN, font or third-party request can load.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

type Headers = [(HeaderName, HeaderValue); 5];

fn headers(content_type: &'static str) -> Headers {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        // Assets change with the binary: revalidate (cheap on loopback)
        // rather than serve a stale script after an upgrade.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (headers(content_type), body)
}

/// The explorer's routes: `/` (the page) and `/explorer/{app.js,
/// style.css, favicon.svg}`. Stateless, so it merges into any router:
/// `api_router.merge(explorer::router())` before `.with_state(..)`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/explorer/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/explorer/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/explorer/favicon.svg",
            get(|| async { asset("image/svg+xml", FAVICON_SVG) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every asset, for the checks below.
    const ASSETS: [(&str, &str); 4] = [
        ("index.html", INDEX_HTML),
        ("app.js", APP_JS),
        ("style.css", STYLE_CSS),
        ("favicon.svg", FAVICON_SVG),
    ];

    #[test]
    fn assets_fetch_nothing_from_the_network() {
        for (name, text) in ASSETS {
            for needle in ["http://", "https://", "//cdn", "@import", "url(http"] {
                // The SVG namespace is an identifier, not a fetch.
                let text = text.replace("http://www.w3.org/2000/svg", "");
                assert!(!text.contains(needle), "{name} contains `{needle}`");
            }
        }
    }

    #[test]
    fn script_never_parses_data_as_html() {
        for needle in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!APP_JS.contains(needle), "app.js uses {needle}");
        }
    }

    #[test]
    fn page_loads_the_embedded_assets() {
        assert!(INDEX_HTML.contains("/explorer/app.js"));
        assert!(INDEX_HTML.contains("/explorer/style.css"));
    }

    #[tokio::test]
    async fn serves_the_page_and_assets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router::<()>()).await.unwrap();
        });
        let got = tokio::task::spawn_blocking(move || {
            [
                ("/", "text/html"),
                ("/explorer/app.js", "text/javascript"),
                ("/explorer/style.css", "text/css"),
                ("/explorer/favicon.svg", "image/svg+xml"),
            ]
            .map(|(path, ty)| {
                let r = ureq::get(&format!("http://{addr}{path}")).call().unwrap();
                assert_eq!(r.status(), 200, "{path}");
                assert!(r.content_type().starts_with(ty), "{path}");
                let csp = r.header("content-security-policy").unwrap_or("");
                assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
                r.into_string().unwrap().len()
            })
        })
        .await
        .unwrap();
        server.abort();
        assert_eq!(got[0], INDEX_HTML.len());
        assert_eq!(got[1], APP_JS.len());
    }
}

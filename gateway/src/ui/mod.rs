//! The dashboard at `/ui`: a page and its script and style sheet, embedded
//! in the binary (no CDN, no build step: plain HTML, CSS and JavaScript in
//! `assets/`). The pages hold no data, so they are public; the script reads
//! everything from the API with the key pasted into the page (kept in
//! `sessionStorage`, sent as `Authorization: Bearer`), never with cookies.
//! Every answer carries a strict Content-Security-Policy: scripts, styles
//! and requests from this origin only, no inline script or style, no framing.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The Content-Security-Policy of every `/ui` answer. `connect-src 'self'`
/// lets the script call the API (and read the event stream) on this origin
/// only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
const ICON: &str = include_str!("assets/icon.svg");

/// The dashboard's routes: `/ui` (and `/ui/`, the same page), its assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/ui/", get(|| async { Redirect::permanent("/ui") }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/ui/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/ui/icon.svg", get(|| async { asset("image/svg+xml", ICON) }))
}

/// `body` as `content_type` with the security headers. `no-cache`: a
/// browser revalidates, so a gateway upgrade serves its own script at once.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page loads only its own script and style sheet, and none inline
    /// (the CSP would refuse them).
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        assert!(INDEX.contains(r#"<script src="/ui/app.js" defer></script>"#));
        assert!(INDEX.contains(r#"<link rel="stylesheet" href="/ui/app.css">"#));
        assert_eq!(INDEX.matches("<script").count(), 1, "one script element, by src");
        for inline in ["<style", "style=", "onclick=", "onload=", "javascript:"] {
            assert!(!INDEX.contains(inline), "{inline} in index.html");
            assert!(!SCRIPT.contains(&format!("'{inline}")), "{inline} built by app.js");
        }
        assert!(!SCRIPT.contains("innerHTML"), "app.js builds nodes, never markup from data");
        assert!(!SCRIPT.contains("new EventSource"), "EventSource cannot send the Authorization header");
    }
}

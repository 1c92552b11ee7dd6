//! The portal page (SPEC §10): the built files of `node/portal/dist`, compiled into the binary
//! so that a node needs no JavaScript toolchain, served at `/portal/` with a strict
//! Content-Security-Policy. The page calls only the admin API, on this origin.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, StatusCode};
use include_dir::{include_dir, Dir};

use crate::http::{Answer, ApiError, Code};

static DIST: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/portal/dist");

/// No script or style but the page's own files, no request to another origin, no framing, no
/// form posting elsewhere. The QR code is a `data:` image.
pub const PORTAL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The interactive API documentation shares the cookie's origin, so it gets the same rules
/// except inline styles, which Swagger UI sets on its own elements (scripts stay `'self'`).
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// The headers every page response carries: the policy, no framing, no referrer.
pub fn page_headers(answer: Answer, csp: &'static str) -> Answer {
    answer
        .with_header(
            http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        )
        .with_header(
            http::header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        )
        .with_header(
            http::header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        )
}

/// `GET /portal/`
#[utoipa::path(get, path = "/portal/", tag = "portal",
    responses((status = 200, description = "The portal page (strict Content-Security-Policy)", content_type = "text/html", body = String),
        (status = 403, description = "`ip_denied`: caller outside `--admin-cidrs`", body = crate::http::schema::CodedError)))]
pub fn index_doc() {}

/// `GET /portal/{file}`
#[utoipa::path(get, path = "/portal/{file}", tag = "portal", params(("file" = String, Path)),
    responses(
        (status = 200, description = "An asset of the page (JavaScript, CSS, SVG)", content_type = "application/octet-stream", body = String),
        (status = 403, description = "`ip_denied`: caller outside `--admin-cidrs`", body = crate::http::schema::CodedError),
        (status = 404, description = "`not_found`: no such asset", body = crate::http::schema::CodedError)))]
pub fn file_doc() {}

/// `GET /portal` → `/portal/`
#[utoipa::path(get, path = "/portal", tag = "portal",
    responses((status = 301, description = "To `/portal/`", headers(("Location" = String, description = "`/portal/`")))))]
pub fn redirect_doc() {}

/// `GET /portal/{path}`; the empty path is the page itself.
pub fn file(path: &str) -> Answer {
    let path = if path.is_empty() { "index.html" } else { path };
    let found = DIST
        .get_file(path)
        .and_then(|f| Some((f.contents(), content_type(path)?)));
    let Some((body, ct)) = found else {
        return page_headers(ApiError::code(Code::NotFound).into(), PORTAL_CSP);
    };
    let answer = Answer {
        status: StatusCode::OK,
        body: Bytes::from_static(body),
        headers: Default::default(),
        no_store: false,
    }
    .with_header(CONTENT_TYPE, HeaderValue::from_static(ct))
    // Files change with the binary and have no hashed names: revalidate every time.
    .with_header(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    page_headers(answer, PORTAL_CSP)
}

/// `GET /portal` → `/portal/`, so the page's relative paths resolve under it.
pub fn redirect() -> Answer {
    Answer::empty(StatusCode::MOVED_PERMANENTLY)
        .with_header(LOCATION, HeaderValue::from_static("/portal/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_page_is_embedded_with_its_scripts() {
        let index = DIST.get_file("index.html").expect("dist/index.html");
        let html = index.contents_utf8().expect("utf-8");
        assert!(html.contains("<script type=\"module\""), "{html}");
        assert!(!html.contains("<style"), "no inline style under the CSP");
        for f in DIST.files() {
            let name = f.path().to_string_lossy();
            assert!(content_type(&name).is_some(), "{name} would not be served");
        }
    }
}

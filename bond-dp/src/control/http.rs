//! Just enough HTTP/1.x for a Prometheus scrape: GET or HEAD of one path (a query string is
//! allowed), answered once and closed. Anything else gets its status code, never a panic.

/// The answer to a request head in `bytes`, or `None` while the head is not complete.
/// `body` renders the page, and is called only for a request that gets it.
pub fn answer(bytes: &[u8], path: &str, body: impl FnOnce() -> String) -> Option<Vec<u8>> {
    let end = find(bytes, b"\r\n\r\n").or_else(|| find(bytes, b"\n\n"))?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target, version) = (words.next(), words.next(), words.next());
    let response = match (method, target, version) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => {
            let wanted = t.split('?').next() == Some(path);
            match (m, wanted) {
                ("GET" | "HEAD", true) => {
                    let page = body();
                    let text = if m == "GET" { page.as_str() } else { "" };
                    response("200 OK", "text/plain; version=0.0.4", page.len(), text)
                }
                ("GET" | "HEAD", false) => {
                    let text = format!("metrics are at {path}\n");
                    response("404 Not Found", "text/plain", text.len(), &text)
                }
                _ => response("405 Method Not Allowed", "text/plain", 0, ""),
            }
        }
        _ => response("400 Bad Request", "text/plain", 0, ""),
    };
    Some(response.into_bytes())
}

/// What a client whose request head passes the limit is told.
pub fn too_large() -> Vec<u8> {
    response("431 Request Header Fields Too Large", "text/plain", 0, "").into_bytes()
}

fn response(status: &str, kind: &str, length: usize, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n{body}"
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        let answer = answer(bytes, "/metrics", || "m 1\n".into()).expect("a whole head");
        String::from_utf8(answer).unwrap()
    }

    #[test]
    fn scrapes_and_everything_else() {
        assert!(answer(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
            "/metrics",
            String::new
        )
        .is_none());
        let ok = text(b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("\r\n\r\nm 1\n"),
            "{ok}"
        );
        let head = text(b"HEAD /metrics HTTP/1.0\n\n");
        assert!(
            head.contains("Content-Length: 4\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(text(b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(text(b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(text(b"\xff\xfe garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(text(b"\r\n\r\n").starts_with("HTTP/1.1 400"));
    }
}

//! CSRF tokens, cookies and the security headers every response carries.
//!
//! CSRF protection is the double-submit pattern: each client gets a random
//! token in an HttpOnly, SameSite=Lax cookie; pages put the same token in
//! every form (`(csrf-field)`) and in `<meta name="csrf-token">` for the
//! browser runtime's `X-CSRF-Token` header. A request with an unsafe method
//! must present the token, compared in constant time.

/// The cookie holding the client's CSRF token.
pub const CSRF_COOKIE: &str = "rose_ash_csrf";
/// The form field carrying the token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header carrying the token (from the browser runtime).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The content security policy of every page (unless the handler set
/// one), with `form_action` origins allowed as form targets besides the
/// page's own.
pub fn content_security_policy(form_action: &[String]) -> String {
    let mut targets = String::from("'self'");
    for o in form_action {
        // Origins only: no quotes, semicolons or spaces can break out.
        if o.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '[' | ']'))
        {
            targets.push(' ');
            targets.push_str(o);
        }
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action {targets}; \
         frame-ancestors 'none'"
    )
}

/// Headers added to every response besides the CSP (unless the handler
/// set them).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// A fresh random token: 32 hex digits (128 bits).
pub fn random_token() -> String {
    let bytes = random_bytes().unwrap_or_else(|e| {
        // getrandom fails only when the OS has no randomness at all; a
        // token made of the clock is still unguessable enough to not block
        // serving, but say so loudly.
        tracing::error!("no OS randomness for a CSRF token: {e}");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        nanos.to_le_bytes()
    });
    let mut token = String::with_capacity(2 * bytes.len());
    for b in bytes {
        token.push(char::from(HEX[usize::from(b >> 4)]));
        token.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    token
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// OS randomness fetched per thread in blocks: every request without a
/// token cookie needs 16 bytes, and a `getrandom` call for each was a
/// system call per request. Bytes are handed out once and never reused.
struct RandomPool {
    bytes: [u8; 1024],
    used: usize,
}

thread_local! {
    static RANDOM: std::cell::RefCell<RandomPool> = const {
        std::cell::RefCell::new(RandomPool { bytes: [0; 1024], used: 1024 })
    };
}

/// 16 fresh random bytes from the thread's pool.
fn random_bytes() -> Result<[u8; 16], getrandom::Error> {
    RANDOM.with_borrow_mut(|pool| {
        if pool.used + 16 > pool.bytes.len() {
            getrandom::fill(&mut pool.bytes)?;
            pool.used = 0;
        }
        let mut out = [0u8; 16];
        if let Some(chunk) = pool.bytes.get_mut(pool.used..pool.used + 16) {
            out.copy_from_slice(chunk);
            // Wiped so the pool holds no copy of a token handed out.
            chunk.fill(0);
        }
        pool.used += 16;
        Ok(out)
    })
}

/// Whether a token has the shape [`random_token`] makes (so a hostile
/// cookie cannot smuggle text into pages).
pub fn well_formed_token(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares secrets without an early exit, so timing reveals nothing of
/// how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookies of a request, from every `Cookie` header.
pub fn parse_cookies<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for header in headers {
        for pair in header.split(';') {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let name = name.trim();
            let value = value.trim().trim_matches('"');
            if !name.is_empty() {
                out.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    out
}

/// Options for a cookie a response sets.
#[derive(Debug, Clone, Default)]
pub struct CookieOptions {
    pub max_age: Option<i64>,
    pub path: Option<String>,
    /// Readable by page scripts (default: HttpOnly).
    pub script_readable: bool,
    pub secure: bool,
}

/// Whether `s` may appear in a cookie name or value as written.
fn cookie_safe(s: &str, name: bool) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\') && !(name && b == b'=')
    })
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Lax unless asked otherwise,
/// Secure behind TLS. `None` if the name or value has characters a cookie
/// cannot carry.
pub fn set_cookie(name: &str, value: &str, opts: &CookieOptions) -> Option<String> {
    if name.is_empty() || !cookie_safe(name, true) || !cookie_safe(value, false) {
        return None;
    }
    let path = opts.path.as_deref().unwrap_or("/");
    let mut s = String::with_capacity(name.len() + value.len() + path.len() + 64);
    s.push_str(name);
    s.push('=');
    s.push_str(value);
    s.push_str("; Path=");
    s.push_str(path);
    if let Some(age) = opts.max_age {
        s.push_str("; Max-Age=");
        s.push_str(&age.to_string());
    }
    if !opts.script_readable {
        s.push_str("; HttpOnly");
    }
    s.push_str("; SameSite=Lax");
    if opts.secure {
        s.push_str("; Secure");
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = random_token();
        assert!(well_formed_token(&t));
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(t, random_token());
        assert!(!well_formed_token("<script>"));
    }

    #[test]
    fn tokens_stay_distinct_across_refills_of_the_random_pool() {
        // 64 tokens per pool: three refills.
        let tokens: std::collections::HashSet<String> = (0..200).map(|_| random_token()).collect();
        assert_eq!(tokens.len(), 200);
        assert!(!tokens.contains(&"0".repeat(32)));
    }

    #[test]
    fn constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn cookies() {
        let c = parse_cookies(["a=1; b=\"2\"", "c=3;;bad"].into_iter());
        assert_eq!(
            c,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into())
            ]
        );
        let opts = CookieOptions {
            secure: true,
            ..Default::default()
        };
        assert_eq!(
            set_cookie("s", "v", &opts).as_deref(),
            Some("s=v; Path=/; HttpOnly; SameSite=Lax; Secure")
        );
        let gone = CookieOptions {
            max_age: Some(0),
            path: Some("/app".into()),
            script_readable: true,
            secure: false,
        };
        assert_eq!(
            set_cookie("s", "", &gone).as_deref(),
            Some("s=; Path=/app; Max-Age=0; SameSite=Lax")
        );
        assert_eq!(set_cookie("s", "a;b", &opts), None);
        assert_eq!(set_cookie("s=x", "v", &opts), None);
    }
}

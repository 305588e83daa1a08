//! sx-web beyond what spec/tests/render.sx covers: sizes no SX test file
//! should build, and the Rust API.

use sx::{Interp, Value};

fn interp() -> Interp {
    let mut i = Interp::new();
    if let Err(e) = sx_web::install(&mut i) {
        panic!("install: {e}");
    }
    i
}

#[test]
fn deep_nesting_renders_without_overflowing_the_stack() {
    let mut i = interp();
    let v = i
        .eval_str(
            "(let loop ((n 0) (acc \"x\")) (if (= n 200000) acc (loop (+ n 1) (div acc))))",
            "deep",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let html = sx_web::render_html_string(&v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(html.len(), 200_000 * "<div></div>".len() + 1);
    let wire = sx_web::to_wire_string(&v).unwrap_or_else(|e| panic!("{e}"));
    assert!(wire.starts_with("(div (div") && wire.contains("(div \"x\")"));
    assert_eq!(wire.matches(')').count(), 200_000);
}

#[test]
fn render_errors_name_what_was_wrong() {
    let mut i = interp();
    let v = i
        .eval_str("(div (p {:a 1}))", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = sx_web::render_html_string(&v)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(err, "cannot render dict {:a 1} as markup");
    let v = i
        .eval_str("(element \"x-a\" :b {:c 1})", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = sx_web::render_html_string(&v)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "cannot render dict {:c 1} as markup as the value of attribute b"
    );
}

#[test]
fn attribute_names_are_checked() {
    // Keywords can hold characters HTML would read as markup.
    let mut i = interp();
    for bad in [":a\"b", ":a=b", ":a>b"] {
        let src = format!("(div {bad} 1)");
        if let Ok(v) = i.eval_str(&src, "t") {
            if matches!(v, Value::Element(_)) {
                assert!(sx_web::render_html_string(&v).is_err(), "{src}");
            }
        }
    }
}

#[test]
fn attribute_facts_are_the_same_on_every_render() {
    // What a name is (valid, a URL) is worked out once per thread and
    // kept: later renders, and names seen first in another role, must
    // get the same answers as the first.
    let mut i = interp();
    let v = i
        .eval_str(
            "(div :href \"javascript:alert(1)\" :title \"javascript:x\" :class \"a<b\" \
             (a :href \"/ok?a=1&b='2'\" :data-x \"q\\\"\" \"t\") \
             (img :src \"data:image/png;base64,AA\") (a :src \"data:image/png;base64,AA\"))",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = "<div href=\"about:invalid#sx-unsafe-url\" title=\"javascript:x\" \
                    class=\"a&lt;b\"><a href=\"/ok?a=1&amp;b=&#39;2&#39;\" data-x=\"q&quot;\">t</a>\
                    <img src=\"data:image/png;base64,AA\"><a src=\"about:invalid#sx-unsafe-url\"></a></div>";
    for _ in 0..3 {
        let html = sx_web::render_html_string(&v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(html, expected);
    }
    let bad = i
        .eval_str("(div (p :a=b 1))", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    if let Value::Element(_) = bad {
        for _ in 0..3 {
            assert!(sx_web::render_html_string(&bad).is_err());
        }
    }
}

// ---------------------------------------------------------------- markdown

fn md(src: &str) -> String {
    sx_web::markdown_to_html(src)
}

/// `(markdown->html src)` through the interpreter, as SX code calls it.
fn md_sx(i: &mut Interp, src: &str) -> String {
    let v = i
        .eval_str(
            &format!(
                "(markdown->html {})",
                sx::printer::serialize(&Value::str(src)).unwrap_or_default()
            ),
            "md",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    match v {
        Value::Str(s) => s.to_string(),
        other => panic!("markdown->html returned {other}"),
    }
}

#[test]
fn markdown_headings_emphasis_and_lists() {
    assert_eq!(md("# Title\n\n## Sub"), "<h1>Title</h1>\n<h2>Sub</h2>\n");
    assert_eq!(
        md("*em* **strong** ~~gone~~ `code`"),
        "<p><em>em</em> <strong>strong</strong> <del>gone</del> <code>code</code></p>\n"
    );
    assert_eq!(
        md("- a\n- b\n\n1. one\n2. two"),
        "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n"
    );
    assert_eq!(
        md("> quoted"),
        "<blockquote>\n<p>quoted</p>\n</blockquote>\n"
    );
}

#[test]
fn markdown_code_blocks_are_escaped() {
    assert_eq!(
        md("```html\n<script>alert(1)</script>\n```"),
        "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;\n</code></pre>\n"
    );
    assert_eq!(
        md("    if a < b && c > d {}"),
        "<pre><code>if a &lt; b &amp;&amp; c &gt; d {}</code></pre>\n"
    );
    assert_eq!(md("`<b>`"), "<p><code>&lt;b&gt;</code></p>\n");
}

#[test]
fn markdown_links_get_rel_noopener() {
    assert_eq!(
        md("[coop](https://coop.example/a?b=1&c=2 \"T\")"),
        "<p><a href=\"https://coop.example/a?b=1&amp;c=2\" title=\"T\" rel=\"noopener noreferrer\">coop</a></p>\n"
    );
    assert_eq!(
        md("[rel](/posts/x) <https://auto.example>"),
        "<p><a href=\"/posts/x\" rel=\"noopener noreferrer\">rel</a> <a href=\"https://auto.example\" rel=\"noopener noreferrer\">https://auto.example</a></p>\n"
    );
    assert_eq!(
        md("![alt](/static/a.png)"),
        "<p><img src=\"/static/a.png\" alt=\"alt\"></p>\n"
    );
}

#[test]
fn markdown_tables() {
    assert_eq!(
        md("| a | b |\n|:--|--:|\n| 1 | <i>2</i> |"),
        "<table><thead><tr><th style=\"text-align:left\">a</th><th style=\"text-align:right\">b</th></tr></thead><tbody>\n\
         <tr><td style=\"text-align:left\">1</td><td style=\"text-align:right\">&lt;i&gt;2&lt;/i&gt;</td></tr>\n\
         </tbody></table>\n"
    );
}

/// What Markdown may produce.
const ALLOWED_TAGS: &[&str] = &[
    "p",
    "a",
    "em",
    "strong",
    "del",
    "code",
    "pre",
    "img",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "blockquote",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
    "br",
];

/// The text inside every `<...>` of `html`.
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
        .collect()
}

/// Every way we know of to get script, a frame or a handler into a page
/// through Markdown: none may survive.
#[test]
fn markdown_xss_is_neutralised() {
    let attacks = [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java\tscript:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](&#x6A;&#x61;vascript:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](%6Aavascript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        "![x](javascript:alert(1))",
        "<img src=x onerror=alert(1)>",
        "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
        "<a href=\"javascript&#58;alert(1)\">x</a>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<svg onload=alert(1)>",
        "<svg><script>alert(1)</script></svg>",
        "<style>body{display:none}</style>",
        "<div style=\"background:url(javascript:alert(1))\">x</div>",
        "<object data=\"x.swf\"></object><embed src=\"x.swf\">",
        "<form action=\"javascript:alert(1)\"><button>x</button></form>",
        "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;img src=x onerror=alert(1)&#62;",
        "<!-- <script>alert(1)</script> -->",
        "[x]: javascript:alert(1)\n\n[click][x]",
        "<details open ontoggle=alert(1)>",
        "`x`<img src=`x` onerror=alert(1)>",
        "| a |\n|---|\n| <script>alert(1)</script> |",
        "<<script>script>alert(1)<</script>/script>",
    ];
    let mut i = interp();
    for src in attacks {
        for html in [md(src), md_sx(&mut i, src)] {
            // Escaped text holds no `<`, so every `<` opens a real tag:
            // check each tag's name and attributes.
            for tag in tags(&html) {
                let lower = tag.to_ascii_lowercase();
                let name: String = lower
                    .trim_start_matches('/')
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                assert!(
                    ALLOWED_TAGS.contains(&name.as_str()),
                    "{src:?} gave tag <{tag}> in {html:?}"
                );
                for bad in ["javascript:", "vbscript:", "data:", " on", "xlink", "url("] {
                    assert!(!lower.contains(bad), "{src:?} gave tag <{tag}> in {html:?}");
                }
            }
        }
    }
    // Raw HTML in the source is shown as text, not dropped silently.
    assert_eq!(
        md("<script>alert(1)</script>"),
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    );
    assert_eq!(
        md("[x](javascript:alert(1))"),
        "<p><a rel=\"noopener noreferrer\">x</a></p>\n"
    );
}

#[test]
fn markdown_in_sx_is_raw_markup_and_checks_its_argument() {
    let mut i = interp();
    let v = i
        .eval_str(
            "(render-html (article :class \"post\" (markdown \"# T\\n\\n<b>x</b> *y*\")))",
            "md",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v,
        Value::str(
            "<article class=\"post\"><h1>T</h1>\n<p>&lt;b&gt;x&lt;/b&gt; <em>y</em></p>\n</article>"
        )
    );
    for (src, kind, message) in [
        (
            "(markdown->html 7)",
            ":type",
            "markdown->html: expected a string, got integer 7",
        ),
        (
            "(markdown->html nil)",
            ":type",
            "markdown->html: expected a string, got nil nil",
        ),
        (
            "(markdown :x)",
            ":type",
            "markdown: expected a string, got keyword",
        ),
    ] {
        let v = i
            .eval_str(
                &format!("(try {src} (catch e (list (get e :kind) (get e :message))))"),
                "md",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = sx::printer::display(&v);
        assert_eq!(shown, format!("({kind} {message:?})"), "{src}");
    }
    assert!(i.eval_str("(markdown->html \"a\" \"b\")", "md").is_err());
}

#[test]
fn markdown_survives_deep_nesting_and_odd_input() {
    // Nesting past the cap keeps the text, not the elements.
    let html = md(&format!("{}deep", "> ".repeat(100)));
    assert_eq!(
        html.matches("<blockquote>").count(),
        sx_web::markdown::MAX_DEPTH
    );
    assert!(html.contains("deep"));
    for (n, src) in [
        "> ".repeat(10_000) + "deep",
        ">".repeat(50_000),
        "- ".repeat(20_000),
        "[".repeat(50_000),
        "*".repeat(50_000),
        "<div>".repeat(20_000),
        "\u{0}\u{FEFF}\r\n\t\u{202E}".repeat(1000),
    ]
    .into_iter()
    .enumerate()
    {
        let t = std::time::Instant::now();
        let html = md(&src);
        assert!(!html.contains("<script"));
        // Debug builds: ammonia is quadratic in nesting depth, which
        // markdown.rs caps; without the cap the first input takes seconds.
        assert!(t.elapsed().as_secs() < 2, "input {n}: {:?}", t.elapsed());
    }
}

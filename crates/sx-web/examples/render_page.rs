//! Renders the HTTP benchmark's page (bench/http/app/bench.sx in a layout
//! like lib/host/layout.sx) N times: for measuring `render-html` alone,
//! e.g. `valgrind --tool=callgrind --toggle-collect='sx_web::html::render_html'
//! target/release/examples/render_page 1000`.

const PAGE: &str = r#"
(defcomp ~bench/post-card (&key post)
  (article :class "post-card"
    (h2 (a :href (str "/posts/" (get post :slug)) (get post :title)))
    (p :class "meta" "by " (get post :author) " · " (get post :date))
    (p (get post :summary))))
(define bench/posts
  (map (fn (i)
         {:slug (str "post-" i) :title (str "Post number " i)
          :author "Rose" :date "2026-11-23"
          :summary "A short summary of the post, with <markup> & entities to escape."})
       (range 20)))
(<>
  (raw! "<!doctype html>")
  (html :lang "en"
    (head
      (meta :charset "utf-8")
      (meta :name "viewport" :content "width=device-width, initial-scale=1")
      (title "Posts — Rose Ash")
      (meta :name "csrf-token" :content "0123456789abcdef0123456789abcdef")
      (link :rel "stylesheet" :href "/static/site.0123456789.css")
      (script :src "/static/sx.0123456789.js" :defer true))
    (body :sx-boost "true"
      (<>
        (header :class "site-header"
          (a :class "site-name" :href "/" "Rose Ash"))
        (main :id "main"
          (list (h1 "Latest posts")
                (map (fn (p) (~bench/post-card :post p)) bench/posts)))
        (footer :class "site-footer"
          (p "Powered by Rose Ash"))))))
"#;

const BIG_TABLE: &str = r#"
(table (map (fn (r) (tr (map (fn (c) (td c)) (range (* r 100) (+ (* r 100) 100)))))
            (range 100)))
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let mut interp = sx::Interp::new();
    sx_web::install(&mut interp)?;
    // `--bigtable`: bench/render's 100x100 table of integers instead.
    let source = if std::env::args().any(|a| a == "--bigtable") {
        BIG_TABLE
    } else {
        PAGE
    };
    let mut doc = sx::Value::Nil;
    for form in sx::reader::read_all(source, "page", true)? {
        doc = interp.eval(&form)?;
    }
    let mut last = String::new();
    for _ in 0..n {
        let mut out = String::with_capacity(16 * 1024);
        sx_web::render_html(&doc, &mut out)?;
        last = std::hint::black_box(out);
    }
    if std::env::args().any(|a| a == "--print") {
        println!("{last}");
    } else {
        println!("{} bytes", last.len());
    }
    Ok(())
}

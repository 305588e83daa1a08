//! `markdown->html`: CommonMark to sanitized HTML.
//!
//! Markdown is written by members, so nothing in it is trusted:
//!
//! 1. pulldown-cmark parses CommonMark with tables and strikethrough. Raw
//!    HTML in the source (blocks and inline tags) is turned into *text*
//!    before rendering, so `<script>` in a post shows as `<script>`.
//! 2. ammonia then cleans the HTML pulldown-cmark wrote, as a second line:
//!    only a fixed set of tags and attributes survive, URLs must be
//!    relative or `http`, `https` or `mailto` (so `javascript:`, `data:`
//!    and friends are dropped however they are spelled or escaped), event
//!    handler attributes never pass, `<script>`, `<style>` and `<iframe>`
//!    go with their content, and links get `rel="noopener noreferrer"`.
//!
//! The result is the one string in this crate that `markdown` (web.sx)
//! hands to `raw!`.

use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// The sanitizer, built once: it is immutable and `Sync`.
static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.url_schemes(["http", "https", "mailto"].into())
        .add_clean_content_tags(["iframe", "noscript", "template", "object", "embed"])
        // Table cell alignment is the only style pulldown-cmark writes.
        .add_tag_attributes("th", ["style"])
        .add_tag_attributes("td", ["style"])
        .filter_style_properties(["text-align"].into())
        .link_rel(Some("noopener noreferrer"));
    b
});

/// The CommonMark extensions the platform accepts.
fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// How deeply elements may nest. html5ever (under ammonia) takes time
/// quadratic in the depth — 50 000 `>` took ten seconds — so deeper
/// elements are left out and only their text is kept. No real post
/// nests this deep.
pub const MAX_DEPTH: usize = 32;

/// The events to render: raw HTML in the source becomes text (Markdown is
/// not an HTML channel; an HTML block becomes a paragraph of its text),
/// and elements deeper than [`MAX_DEPTH`] are dropped (their content
/// stays).
fn events(src: &str) -> impl Iterator<Item = Event<'_>> {
    // One entry per open element: whether its start was emitted.
    let mut open: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    Parser::new_ext(src, options()).filter_map(move |event| match event {
        Event::Html(s) | Event::InlineHtml(s) => Some(Event::Text(s)),
        Event::Start(Tag::HtmlBlock) => {
            let keep = depth < MAX_DEPTH;
            open.push(keep);
            if keep {
                depth += 1;
                Some(Event::Start(Tag::Paragraph))
            } else {
                None
            }
        }
        Event::End(TagEnd::HtmlBlock) => {
            if open.pop().unwrap_or(false) {
                depth = depth.saturating_sub(1);
                Some(Event::End(TagEnd::Paragraph))
            } else {
                None
            }
        }
        Event::Start(tag) => {
            let keep = depth < MAX_DEPTH;
            open.push(keep);
            if keep {
                depth += 1;
                Some(Event::Start(tag))
            } else {
                None
            }
        }
        Event::End(tag) => {
            if open.pop().unwrap_or(false) {
                depth = depth.saturating_sub(1);
                Some(Event::End(tag))
            } else {
                None
            }
        }
        other => Some(other),
    })
}

/// Renders CommonMark `src` to sanitized HTML.
pub fn markdown_to_html(src: &str) -> String {
    let parser = events(src);
    let mut html = String::with_capacity(src.len() + src.len() / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    CLEANER.clean(&html).to_string()
}

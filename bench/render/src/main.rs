//! Renders the "big table" (100×100 cells) and "teams" templates with SX
//! components, MiniJinja and Askama; checks that all produce the same HTML;
//! prints one line per engine and template: `engine template µs-per-render`.
//! With `--out DIR`, writes each template's HTML there (bench/render/run
//! compares Jinja2's output with it).

use std::time::{Duration, Instant};

use askama::Template;
use serde::Serialize;

// The allocator the `rose-ash` binary ships with (its own source file), for
// every engine alike: SX is measured as it runs in production.
#[path = "../../../crates/rose-ash/src/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: sx::alloc::CountingAlloc<alloc::FastMiMalloc> =
    sx::alloc::CountingAlloc::new(alloc::FastMiMalloc);

const SX_TEMPLATES: &str = include_str!("../templates.sx");
const BIGTABLE: &str = include_str!("../templates/bigtable.html");
const TEAMS: &str = include_str!("../templates/teams.html");

#[derive(Serialize, Clone)]
struct Team {
    name: String,
    score: u8,
}

#[derive(Template)]
#[template(path = "bigtable.html")]
struct BigTable<'a> {
    rows: &'a [Vec<usize>],
}

#[derive(Template)]
#[template(path = "teams.html")]
struct Teams<'a> {
    year: u16,
    teams: &'a [Team],
}

fn big_table_rows() -> Vec<Vec<usize>> {
    (0..100).map(|r| (0..100).map(|c| r * 100 + c).collect()).collect()
}

fn teams() -> Vec<Team> {
    [("Jiangsu", 43), ("Beijing", 27), ("Guangzhou", 22), ("Shandong", 12)]
        .into_iter()
        .map(|(name, score)| Team {
            name: name.to_owned(),
            score,
        })
        .collect()
}

/// Mean time per call over the best of three ~0.5 s batches.
fn time(mut f: impl FnMut() -> String) -> (f64, String) {
    let out = f();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_millis(500) {
            std::hint::black_box(f());
            n += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    }
    (best, out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out_dir = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).cloned();

    let rows = big_table_rows();
    let teams = teams();

    // SX: build the data as SX values once, as a host would hand it over.
    let mut interp = sx::Interp::new();
    sx_web::install(&mut interp)?;
    interp.eval_str(SX_TEMPLATES, "templates.sx")?;
    let sx_rows = sx::Value::list(
        rows.iter()
            .map(|r| sx::Value::list(r.iter().map(|&c| sx::Value::Int(c as i64)).collect()))
            .collect(),
    );
    let sx_teams = interp.eval_str(
        r#"(list {:name "Jiangsu" :score 43} {:name "Beijing" :score 27}
                 {:name "Guangzhou" :score 22} {:name "Shandong" :score 12})"#,
        "data",
    )?;
    let render_big = interp.lookup("bench/render-big-table").ok_or("no bench/render-big-table")?;
    let render_teams = interp.lookup("bench/render-teams").ok_or("no bench/render-teams")?;
    let sx_call = |interp: &mut sx::Interp, f: &sx::Value, args: Vec<sx::Value>| -> String {
        match interp.call_value(f, args) {
            // `String::from`, not `to_string` (the formatting machinery).
            Ok(sx::Value::Str(s)) => String::from(&*s),
            Ok(other) => format!("unexpected {}", sx::printer::display(&other)),
            Err(e) => format!("error: {e}"),
        }
    };

    // MiniJinja.
    let mut env = minijinja::Environment::empty();
    env.add_template("bigtable.html", BIGTABLE)?;
    env.add_template("teams.html", TEAMS)?;
    let mj_big = env.get_template("bigtable.html")?;
    let mj_teams = env.get_template("teams.html")?;
    let big_ctx = minijinja::context! { rows => &rows };
    let teams_ctx = minijinja::context! { year => 2015, teams => &teams };

    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let run = |engine: &str| only.as_deref().is_none_or(|o| o == engine);
    let mut results: Vec<(&str, &str, f64, String)> = Vec::new();
    if only.as_deref() == Some("sx-profile-teams") {
        for _ in 0..10_000 {
            std::hint::black_box(sx_call(
                &mut interp,
                &render_teams,
                vec![sx::Value::Int(2015), sx_teams.clone()],
            ));
        }
        return Ok(());
    }
    if only.as_deref() == Some("sx-profile") {
        // A long SX-only run for profilers.
        for _ in 0..300 {
            std::hint::black_box(sx_call(&mut interp, &render_big, vec![sx_rows.clone()]));
        }
        return Ok(());
    }
    if run("sx") {
        let (t, html) = time(|| sx_call(&mut interp, &render_big, vec![sx_rows.clone()]));
        results.push(("sx", "bigtable", t, html));
    }
    let (t, html) = time(|| mj_big.render(&big_ctx).unwrap_or_else(|e| e.to_string()));
    results.push(("minijinja", "bigtable", t, html));
    let (t, html) = time(|| BigTable { rows: &rows }.render().unwrap_or_else(|e| e.to_string()));
    results.push(("askama", "bigtable", t, html));
    let (t, html) = time(|| {
        sx_call(
            &mut interp,
            &render_teams,
            vec![sx::Value::Int(2015), sx_teams.clone()],
        )
    });
    results.push(("sx", "teams", t, html));
    let (t, html) = time(|| mj_teams.render(&teams_ctx).unwrap_or_else(|e| e.to_string()));
    results.push(("minijinja", "teams", t, html));
    let (t, html) = time(|| Teams { year: 2015, teams: &teams }.render().unwrap_or_else(|e| e.to_string()));
    results.push(("askama", "teams", t, html));

    let mut same = true;
    for template in ["bigtable", "teams"] {
        let outs: Vec<&(&str, &str, f64, String)> = results.iter().filter(|r| r.1 == template).collect();
        if let Some(first) = outs.first() {
            for other in &outs[1..] {
                if other.3 != first.3 {
                    same = false;
                    eprintln!(
                        "MISMATCH {template}: {} and {} differ\n{}: {}\n{}: {}",
                        first.0,
                        other.0,
                        first.0,
                        &first.3.chars().take(300).collect::<String>(),
                        other.0,
                        &other.3.chars().take(300).collect::<String>()
                    );
                }
            }
            if let Some(dir) = &out_dir {
                std::fs::write(format!("{dir}/{template}.html"), &first.3)?;
            }
        }
    }
    for (engine, template, t, _) in &results {
        println!("{engine} {template} {t:.4}");
    }
    if !same {
        return Err("engines produced different HTML".into());
    }
    Ok(())
}

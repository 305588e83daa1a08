"""Jinja2's side of the rendering benchmark: same templates, same data.
Prints `jinja2 TEMPLATE MICROSECONDS` lines; with --out DIR writes the HTML."""
import os
import sys
import timeit

import jinja2

HERE = os.path.dirname(os.path.abspath(__file__))
env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")), autoescape=True)
rows = [[r * 100 + c for c in range(100)] for r in range(100)]
teams = [dict(name=n, score=s) for n, s in [("Jiangsu", 43), ("Beijing", 27), ("Guangzhou", 22), ("Shandong", 12)]]
cases = [
    ("bigtable", lambda: env.get_template("bigtable.html").render(rows=rows)),
    ("teams", lambda: env.get_template("teams.html").render(year=2015, teams=teams)),
]
out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
for name, render in cases:
    if out:
        with open(os.path.join(out, name + ".jinja2.html"), "w") as f:
            f.write(render())
    timer = timeit.Timer(render)
    n, _ = timer.autorange()
    best = min(timer.repeat(3, n)) / n
    print("jinja2 %s %.2f" % (name, best * 1e6))

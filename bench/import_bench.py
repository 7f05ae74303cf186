"""Roster import at size: a generated 10,000-row roster (XLSX and GB18030 CSV) read, previewed and imported
into the demo district, then imported again (nothing changes), on SQLite and on PostgreSQL.

    .venv/bin/python bench/import_bench.py [--rows 10000] [--db sqlite,postgresql]

Writes bench/import-report.md (a table: file size, read, preview, import, re-import, in seconds).
The roster's people are new (mobile numbers 170…, not the demo's); communities, skills and free time
are drawn from the demo district, a tenth of the rows carry a valid ID number.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEEKDAYS = "一二三四五六日"


def id_number(rng: random.Random) -> str:
    born = f"{rng.randint(1950, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first = f"500101{born}{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first + "10X98765432"[sum(int(d) * w for d, w in zip(first, weights, strict=True)) % 11]


def roster(rows: int, communities: list[str], skills: list[str], seed: int = 7) -> tuple[list[str], list[list[str]]]:
    from matcher.rosters import COLUMNS

    rng = random.Random(seed)
    header = [zh for _key, zh, _en, _req in COLUMNS]
    out = []
    for i in range(rows):
        slots = sorted(rng.sample(range(7), rng.randint(1, 3)))
        free = "；".join(f"周{WEEKDAYS[d]} {h:02d}:00-{h + rng.randint(2, 4):02d}:00"
                        for d in slots for h in [rng.choice((8, 9, 14, 15))])
        with_id = i % 10 == 0  # the gender then comes from the ID number
        out.append([f"志愿者{i:05d}", f"170{i:08d}", id_number(rng) if with_id else "",
                    "" if with_id else rng.choice(["男", "女", ""]),
                    "", rng.choice(communities), "", "；".join(rng.sample(skills, rng.randint(0, 2))), "",
                    free, str(rng.choice([2, 4, 6])), "", ""])
    return header, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    results = []
    for db_name in [d.strip() for d in args.db.split(",") if d.strip()]:
        results.append(run_one(db_name, args.rows, args.pg_url))
    lines = ["# Roster import at size", "",
             f"Run {datetime.now():%Y-%m-%d %H:%M} with `bench/import_bench.py --rows {args.rows}`.", "",
             f"**Machine**: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}. "
             "The demo district (scale 1) is loaded first; the roster's people are all new.", "",
             "| database | file | size | read | preview | import | import again (nothing changes) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for fmt in ("xlsx", "csv"):
            f = r[fmt]
            seconds = {key: f"{f[key]:.1f} s" if key in f else "–" for key in ("apply", "again")}
            lines.append(f"| {r['db']} | {fmt.upper()}{' (GB18030)' if fmt == 'csv' else ''} | {f['size'] / 1024:.0f} KB "
                         f"| {f['read']:.1f} s | {f['plan']:.1f} s | {seconds['apply']} | {seconds['again']} |")
    lines += ["", "Read: the file to rows of text; preview: every row judged against the database (nothing written); "
              "import: judged again and written in one transaction; the XLSX is imported, the CSV of the same rows "
              "then finds everyone (all unchanged)."]
    (ROOT / "bench" / "import-report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def run_one(db_name: str, rows: int, pg_url: str) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="linli-import-"))
    env = {**os.environ, "LINLI_INSTANCE_PATH": str(folder), "SECRET_KEY": "bench-import-secret"}
    env.pop("DATABASE_URL", None)
    database = None
    if db_name == "postgresql":
        database = f"linli_import_{os.getpid()}"
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
        env["DATABASE_URL"] = pg_url.rstrip("/") + "/" + database
    flask = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi"]
    try:
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run([*flask, "demo", "load"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        os.environ.update(env)
        from sqlalchemy import select

        from matcher.db import db
        from matcher.models import Area, AreaLevel, Role, Skill, User
        from matcher.rosters import apply_roster, plan_roster
        from matcher.spreadsheets import read_sheet, write_xlsx
        from web import create_app

        app = create_app()
        out = {"db": "SQLite" if db_name == "sqlite" else "PostgreSQL"}
        with app.app_context():
            coord = db.session.scalar(select(User).where(User.username == "coord"))
            assert coord is not None and coord.role == Role.COORDINATOR
            communities = list(db.session.scalars(select(Area.name).where(Area.level == AreaLevel.COMMUNITY)))
            communities = [c for c in communities if communities.count(c) == 1]
            skills = list(db.session.scalars(select(Skill.name_zh)))
            header, body = roster(rows, communities, skills)
            text = io.StringIO(newline="")
            csv.writer(text).writerows([header, *body])
            files = {"xlsx": write_xlsx([("名册", header, body)]), "csv": text.getvalue().encode("gb18030")}
            for fmt, data in files.items():
                figures = out[fmt] = {"size": len(data)}
                started = time.perf_counter()
                sheet = read_sheet(f"roster.{fmt}", data)
                figures["read"] = time.perf_counter() - started
                started = time.perf_counter()
                plan = plan_roster(sheet, coord)
                figures["plan"] = time.perf_counter() - started
                assert plan.ok, plan.problems[:5]
                started = time.perf_counter()
                done = apply_roster(sheet, coord, filename=f"roster.{fmt}")
                db.session.commit()
                figures["apply" if fmt == "xlsx" else "again"] = time.perf_counter() - started
                expected = {"create": rows, "update": 0, "same": 0} if fmt == "xlsx" else \
                    {"create": 0, "update": 0, "same": rows}
                assert done.counts == expected, done.counts
                print(f"{out['db']} {fmt}: {figures}", flush=True)
            db.session.remove()
            db.engine.dispose()
        return out
    finally:
        if database:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database],
                           check=False)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

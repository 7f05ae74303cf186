"""Imports at size: a generated 10,000-row roster (XLSX and GB18030 CSV) read, previewed and imported
into the demo district, then imported again (nothing changes); and a 10,000-row resident list run
through the background job's path (upload, the job's plan, the job's import, then the same file again),
on SQLite and on PostgreSQL.

    .venv/bin/python bench/import_bench.py [--rows 10000] [--db sqlite,postgresql]

Writes bench/import-report.md (tables: file size, read, preview, import, re-import, in seconds).
The roster's people are new (mobile numbers 170…, not the demo's); communities, skills and free time
are drawn from the demo district, a tenth of the rows carry a valid ID number. The residents are new
too (phones 176…), each with consent, spread over the district's communities.
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


def resident_list(rows: int, communities: list[str], seed: int = 11) -> tuple[list[str], list[list[str]]]:
    from matcher.residents import COLUMNS

    rng = random.Random(seed)
    header = [zh for _key, zh, _en, _req in COLUMNS]
    out = []
    for i in range(rows):
        values = {"community": rng.choice(communities), "name": f"居民{i:05d}", "phone": f"176{i:08d}",
                  "gender": rng.choice(["男", "女", ""]), "birth_year": str(rng.randint(1930, 1970)),
                  "address": f"幸福路{i}号", "needs_notes": rng.choice(["独居", "", "行动不便"]), "consent": "是"}
        out.append([values.get(key, "") for key, *_rest in COLUMNS])
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
             f"**Machine**: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
             f"load average {os.getloadavg()[0]:.1f} when it ended (other work shares the cores: compare the CPU column). "
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
              "then finds everyone (all unchanged).", "",
              f"## Residents through the background job ({args.rows:,} rows)", "",
              "| database | file | size | upload (read, kept) | job: preview | job: import | same file again: "
              "preview + import (nothing changes) | total | of which CPU of this process |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        j = r["residents"]
        lines.append(f"| {r['db']} | CSV (GB18030) | {j['size'] / 1024:.0f} KB | {j['upload']:.1f} s | {j['plan']:.1f} s "
                     f"| {j['apply']:.1f} s | {j['again']:.1f} s | {j['upload'] + j['plan'] + j['apply']:.1f} s "
                     f"| {j['cpu']:.1f} s |")
    lines += ["", "The job's steps as the background job runs them (`matcher.imports.run_import`, called the way the "
              "thread or the RQ worker calls it, with its progress written to the upload's row every 250 rows); "
              "the file is larger than IMPORT_JOB_ROWS (500), so both the preview and the import are jobs. Total: "
              "upload, preview and import of the new residents."]
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
            out["residents"] = job_path(coord, communities, rows)
            print(f"{out['db']} residents: {out['residents']}", flush=True)
            db.session.remove()
            db.engine.dispose()
        return out
    finally:
        if database:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database],
                           check=False)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def job_path(coord, communities: list[str], rows: int) -> dict:
    """A resident list through the job's path: upload, plan job, import job; then the same file again."""
    from sqlalchemy import func, select

    from matcher import imports
    from matcher.db import db
    from matcher.models import ImportFile, Resident

    header, body = resident_list(rows, communities)
    text = io.StringIO(newline="")
    csv.writer(text).writerows([header, *body])
    data = text.getvalue().encode("gb18030")
    figures = {"size": len(data)}
    before = db.session.scalar(select(func.count(Resident.id)))
    cpu_started = time.process_time()
    for step in ("first", "again"):
        started = time.perf_counter()
        upload = imports.upload_file(imports.kinds()["residents"], "residents.csv", data, coord)
        db.session.commit()
        upload_id = upload.id
        uploaded = time.perf_counter()
        imports.run_import(upload_id)  # the job: plan
        db.session.expire_all()
        upload = db.session.get(ImportFile, upload_id)
        assert upload.state == imports.PLANNED and upload.plan["problem_count"] == 0, upload.plan["problems"][:3]
        planned = time.perf_counter()
        assert imports.queue_apply(upload)
        db.session.commit()
        imports.run_import(upload_id)  # the job: import
        db.session.expire_all()
        upload = db.session.get(ImportFile, upload_id)
        assert upload.state == imports.DONE, upload.message
        done = time.perf_counter()
        if step == "first":
            assert upload.result == {"create": rows, "update": 0, "same": 0}, upload.result
            figures.update(upload=uploaded - started, plan=planned - uploaded, apply=done - planned,
                           cpu=time.process_time() - cpu_started)
        else:
            assert upload.result == {"create": 0, "update": 0, "same": rows}, upload.result
            figures["again"] = done - started
    assert db.session.scalar(select(func.count(Resident.id))) == before + rows
    return figures


if __name__ == "__main__":
    main()

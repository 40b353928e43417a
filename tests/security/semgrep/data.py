import logging

# ruleid: scribe-insecure-random
import random

from jinja2 import Environment
from markupsafe import Markup
from sqlalchemy import text

log = logging.getLogger(__name__)


def sql(conn, session, name, user_id):
    # ruleid: scribe-sql-built-from-strings
    conn.execute(text(f"SELECT * FROM users WHERE name = '{name}'"))
    # ruleid: scribe-sql-built-from-strings
    conn.execute(text(f"SELECT * FROM users WHERE id = {user_id}"))
    # ruleid: scribe-sql-built-from-strings
    conn.execute(text(f"SELECT * FROM users WHERE name = '{name}'"))
    # ruleid: scribe-sql-built-from-strings
    conn.execute("DELETE FROM notes WHERE id = " + user_id)
    # ok: scribe-sql-built-from-strings
    conn.execute(text("SELECT * FROM users WHERE name = :n"), {"n": name})
    # ok: scribe-sql-built-from-strings
    session.exec(select(User).where(User.username == name))


def logs(job, draft, exc):
    # ruleid: scribe-clinical-text-in-logs
    log.info(f"draft {draft.id} for {draft.text}")
    # ruleid: scribe-clinical-text-in-logs
    log.error("job %s failed: %s", job.id, str(exc))
    # ruleid: scribe-clinical-text-in-logs
    log.warning("job %s failed", job.id, exc_info=True)
    # ruleid: scribe-clinical-text-in-logs
    log.exception("job %s crashed", job.id)
    # ruleid: scribe-clinical-text-in-logs
    log.info("section %s: %s", draft.id, draft.text)
    # ruleid: scribe-clinical-text-in-logs
    logging.debug("transcript %s", job.transcript)
    # ok: scribe-clinical-text-in-logs
    log.error("job %s crashed type=%s", job.id, exc.__class__.__name__)
    # ok: scribe-clinical-text-in-logs
    log.info("draft %s sections=%d", draft.id, len(draft.sections))


def tokens(page, templates):
    # ruleid: scribe-insecure-random
    token = random.choice("abcdef")
    # ruleid: scribe-unescaped-markup
    html = Markup("<p>" + page + "</p>")
    # ruleid: scribe-unescaped-markup
    env = Environment(autoescape=False)
    # ruleid: scribe-unescaped-markup
    templates.env.autoescape = False
    # ok: scribe-unescaped-markup
    env = Environment(autoescape=True)
    return token, html, env

"""Where partners, quotas, usage and feedback are kept: SQLAlchemy 2 Core, Alembic migrations.

`Databases.from_settings(settings)` at an entry point (the app factory, a CLI command);
`ASSISTANT_DATABASE_URL` set = one PostgreSQL database for all of it, unset = the embedded
default, SQLite files in `ASSISTANT_STATE_DIR` (`partners.db`, `feedback.db`).
"""

from assistant.db.database import Database, DatabaseError, Databases, SchemaBehind

__all__ = ["Database", "DatabaseError", "Databases", "SchemaBehind"]

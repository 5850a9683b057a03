"""Exit 0 when the PostgreSQL and Redis given on the command line answer, else 1 (used by `make test`)."""

import sys


def main(pg_url: str, redis_url: str) -> int:
    try:
        import redis
        from sqlalchemy import create_engine, text

        eng = create_engine(pg_url, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        return 0
    except Exception as exc:  # any failure means "not available here"
        print(f"NOTICE: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

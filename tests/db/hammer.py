"""One OS process hammering a partner's quota through the real store (see test_quotas_*).

    python -m tests.db.hammer URL STATE_DIR PARTNER_ID ATTEMPTS VISITOR_PER_DAY ADDRESS GO_FILE

Opens the store, waits until GO_FILE exists (so every process starts together), tries
ATTEMPTS admissions and prints how many were admitted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from assistant.db import Database
from assistant.partners.store import PartnerStore

PEPPER = b"hammer-pepper-" + b"x" * 32  # the same in every process: the same visitor hash


def main(argv: list[str]) -> int:
    url, state, partner_id, attempts, visitor_per_day, address, go = argv
    db = Database(url, branches=("partners",))
    store = PartnerStore(
        db, state_dir=Path(state), pepper=PEPPER, visitor_per_day=int(visitor_per_day), visitor_per_minute=100_000
    )
    partner = store.get(partner_id)  # connected and checked before the start
    deadline = time.monotonic() + 30
    while not Path(go).exists():
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.002)
    admitted = sum(store.admit(partner, None, address or None).ok for _ in range(int(attempts)))
    print(admitted)
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def run_processes(
    url: str, state: Path, partner_id: str, attempts: int, *, processes: int = 2, visitor_per_day: int = 100_000,
    address: str = "",
) -> list[int]:
    """Start `processes` hammers on one partner, let them go at once; each one's admitted count."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    go = state / f"go-{partner_id}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.db.hammer", url, str(state), partner_id, str(attempts),
             str(visitor_per_day), address, str(go)],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(processes)
    ]
    time.sleep(0.5)  # let them import and connect
    go.touch()
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        counts.append(int(out.strip().splitlines()[-1]))
    return counts

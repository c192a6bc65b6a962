"""Fills a gateway database with settled payments, as a long-running gateway holds them.

For every payment: its job (completed), its idempotency record and its outbox row (sent;
nothing purges sent rows yet). No card data: it is deleted once the bank answered. Ids
sort before the live ones (`pay_0…`), keys and references are unique. Then VACUUM
ANALYZE, as autovacuum would, and a CHECKPOINT: the seed writes gigabytes of WAL, and
the checkpoint it sets off is spread over minutes (`checkpoint_completion_target`), so
without it the measurement after the seed would share the machine with its writes.
"""

from __future__ import annotations

import asyncpg

CHUNK = 100_000

_PAYMENTS = """
INSERT INTO payments (id, merchant_id, status, amount, currency, reference, metadata,
    card_scheme, card_bin, card_last4, card_expiry_month, card_expiry_year,
    card_holder_name, authorization_code, created_at, updated_at)
SELECT 'pay_0' || lpad(g::text, 25, '0'), $1, 'authorized', 1000 + g % 5000, 'GBP',
    'SEED-' || g, '{}', 'visa', '424242', '4242', 12, 2031, 'Jane Doe', 'A' || g,
    now() - interval '30 days' + g * interval '1 ms', now() - interval '30 days'
FROM generate_series($2::bigint, $3::bigint) AS g"""

_JOBS = """
INSERT INTO jobs (id, merchant_id, payment_id, type, status, created_at, completed_at)
SELECT 'job_0' || lpad(g::text, 25, '0'), $1, 'pay_0' || lpad(g::text, 25, '0'), 'payment',
    'completed', now() - interval '30 days', now() - interval '30 days'
FROM generate_series($2::bigint, $3::bigint) AS g"""

_KEYS = """
INSERT INTO idempotency_keys (merchant_id, key, fingerprint, job_id, payment_id, created_at)
SELECT $1, 'seed-' || g, md5(g::text), 'job_0' || lpad(g::text, 25, '0'),
    'pay_0' || lpad(g::text, 25, '0'), now() - interval '30 days'
FROM generate_series($2::bigint, $3::bigint) AS g"""

_OUTBOX = """
INSERT INTO outbox (id, kind, payload, created_at, sent_at)
SELECT 'msg_0' || lpad(g::text, 25, '0'), 'MakePayment',
    '{"job_id":"job_0","merchant_id":"' || $1 || '","payment_id":"pay_0"}',
    now() - interval '30 days', now() - interval '30 days'
FROM generate_series($2::bigint, $3::bigint) AS g"""


async def seed_payments(dsn: str, count: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        merchant_id = await connection.fetchval("SELECT id FROM merchants ORDER BY id LIMIT 1")
        for start in range(1, count + 1, CHUNK):
            end = min(count, start + CHUNK - 1)
            async with connection.transaction():
                for statement in (_PAYMENTS, _JOBS, _KEYS, _OUTBOX):
                    await connection.execute(statement, merchant_id, start, end)
        await connection.execute("VACUUM ANALYZE")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
